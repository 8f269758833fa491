"""Base classes of the AnatomyINR module widgets and logics: the Slicer template once, plus the worker run.

Every AnatomyINR module is the scripted-module template (parameter node wrapper,
widget, logic) around one computation that runs in a background worker
(``runner.startWorkerJob``). What the template repeats in each module, and the
Apply / Cancel / finished cycle around the worker, lives here:

- :class:`WorkerPanelWidget`: the template's parameter-node lifecycle (the node
  is set and bound to the GUI on ``enter``, released with its observers on
  ``exit``, reset when the scene closes) and Apply (dependencies, start, progress),
  Cancel and the finished callback;
- :class:`WorkerModuleWidget`: the same, plus the preset choice;
- :class:`LiveRefitModuleWidget`: the same, plus live refit in a persistent worker
  (``anatomy-inr serve``): a preview after each edit, full quality when edits pause;
- :class:`WorkerModuleLogic`: ``isRunning``/``cancel``, the start checks, the
  worker launch (its temporary folder is deleted whatever happens) and
  ``runBlocking`` for scripts and tests;
- :func:`describeModule`: the metadata every module sets (category, contributors).

A module subclasses both and supplies what differs: its ``.ui``, texts and extra
connections (widget ``setup``), its Apply condition (``cannotRunReason``), how it
writes inputs and reads results (``start``) and how it shows them (``showResults``).
Slicer finds the module's classes by name in the module file, so the subclasses
keep the template names (``<Module>Widget``, ``<Module>Logic``).
"""

from __future__ import annotations

import logging
import shutil
from typing import Callable, Optional, Sequence

import slicer
import vtk
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic, ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from AnatomyINRSlicerLib import dependencies
from AnatomyINRSlicerLib.live import LiveRefit, PersistentWorker, submitLiveJob
from AnatomyINRSlicerLib.panel import PRESET_TITLES, ChoiceComboBox
from AnatomyINRSlicerLib.progress import ProgressPresenter
from AnatomyINRSlicerLib.runner import BackgroundWorker, startWorkerJob
from AnatomyINRSlicerLib.worker_protocol import WorkerOutcome

LIVE_STATUS = {"preview": translate("AnatomyINR", "Auto-update: preview fit..."),
               "full": translate("AnatomyINR", "Auto-update: full-quality fit...")}
RUN_FAILED_TITLE = translate("AnatomyINR", "AnatomyINR: the run failed")
DETAILS_HINT = "The worker's output is in Details (below Results) and in the application log."
POINT_EVENTS = (slicer.vtkMRMLMarkupsNode.PointAddedEvent, slicer.vtkMRMLMarkupsNode.PointModifiedEvent,
                slicer.vtkMRMLMarkupsNode.PointRemovedEvent)


def describeModule(parent, title: str, helpText: str, acknowledgementText: str) -> None:
    """Set a module's metadata on its ``parent`` (the texts come translated from the module file)."""
    parent.title = title
    parent.categories = [translate("qSlicerAbstractCoreModule", "Surface Models")]
    parent.dependencies = []
    parent.contributors = ["AnatomyINR developers"]
    parent.helpText = helpText
    parent.acknowledgementText = acknowledgementText


class WorkerModuleLogic(ScriptedLoadableModuleLogic):
    """Runs the module's computation in a background worker; usable without the GUI.

    Subclasses define ``getParameterNode`` (wrapping the template's node),
    ``cannotRunReason`` and ``start``; ``lastResult`` holds the last successful result.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.worker: Optional[BackgroundWorker] = None
        self.lastResult = None
        # Fields of the module's options dataclass replaced in every run started from the
        # parameters (scripts and tests: e.g. ``{"iterations": 100}`` for a quick run).
        self.optionOverrides: dict = {}
        self.onLog: Optional[Callable[[str], None]] = None  # receives each worker output line (the panel's log)

    def isRunning(self) -> bool:
        return self.worker is not None and self.worker.isRunning

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def resetSession(self) -> None:
        """Forget the results (the scene they belong to is closing)."""
        self.lastResult = None

    def cannotRunReason(self, parameters) -> Optional[str]:
        """Why Apply is not possible yet (None: it is)."""
        raise NotImplementedError

    def inputNodes(self, parameters) -> list:
        """The selected input nodes whose edits can change ``cannotRunReason`` (observed by the widget)."""
        raise NotImplementedError

    def start(self, parameters, onProgress: Callable, onFinished: Callable, *args, **kwargs) -> BackgroundWorker:
        """Write the inputs to a temporary folder and launch the worker; returns at once.

        ``onFinished(outcome, result)`` runs on the main thread after the results
        (if any) are in the scene; ``result`` is None on failure or cancel.
        """
        raise NotImplementedError

    def checkCanStart(self, parameters, busyMessage: str) -> None:
        """Raise ValueError when Apply is not possible, RuntimeError (``busyMessage``) while a run is going."""
        reason = self.cannotRunReason(parameters)
        if reason is not None:
            raise ValueError(reason)
        if self.isRunning():
            raise RuntimeError(busyMessage)

    def launch(self, subcommand: str, stages: Sequence[tuple[str, float]], folder: str,
               writeInputs: Callable[[], Sequence[str]], readResult: Callable, applyResult: Callable,
               onProgress: Callable, onFinished: Callable, server: Optional[PersistentWorker] = None):
        """Write the inputs into ``folder`` (``writeInputs()`` returns the worker's arguments) and start the worker.

        The run is finished by ``runner.startWorkerJob`` (``readResult``/``applyResult``
        only after a successful exit, ``folder`` deleted, then ``onFinished``), or by
        ``live.submitLiveJob`` in ``server`` (a persistent worker) when given; when
        writing or starting fails, ``folder`` is deleted here and the error raised.
        """
        try:
            arguments = writeInputs()
            if server is not None:
                self.worker = submitLiveJob(server, subcommand, arguments, stages, folder, readResult, applyResult,
                                            onProgress, onFinished)
            else:
                self.worker = startWorkerJob(subcommand, arguments, stages, folder, readResult, applyResult,
                                             onProgress, onFinished, self.onLog)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.worker

    def runBlocking(self, parameters, *args, **kwargs) -> tuple:
        """Run and wait; returns ``(outcome, result)``. For scripts and tests (extra arguments go to ``start``)."""
        finished = []
        worker = self.start(parameters, lambda *unused: None, lambda *result: finished.append(result), *args, **kwargs)
        worker.waitForCompletion()
        return finished[0]


class WorkerPanelWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """GUI: binds the widgets to the parameter node and forwards Apply/Cancel to the Logic.

    A subclass's ``setup`` sets ``self.logic``, calls :meth:`setupPanel`, makes its own
    connections and ends with ``self.initializeParameterNode()``. Its ``.ui`` has
    ``applyButton``, ``cancelButton``, ``progressBar``, ``statusLabel`` and ``logTextEdit``.
    Modules whose computation has presets use :class:`WorkerModuleWidget` (this plus the
    preset choice); a module without presets (nothing to tune, e.g. a trained model's
    prediction) uses this class directly, so its panel has no preset box.
    """

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: Optional[WorkerModuleLogic] = None
        self._observedInputs: list = []  # [(node, events)] observed for onInputEdited
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.applyToolTip = ""
        self.startErrorText = ""
        self.startingText = ""

    def setupPanel(self, uiFile: str, applyToolTip: str, startErrorText: str, startingText: str) -> None:
        """The template's setup: the .ui, scene-close observers, progress display, Apply and Cancel.

        ``uiFile`` is relative to the module's Resources folder; the texts are shown as
        Apply's tool tip, as the error title when a run cannot start, and when it starts.
        """
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(uiFile))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.applyToolTip, self.startErrorText, self.startingText = applyToolTip, startErrorText, startingText
        self.progress = ProgressPresenter(self.ui.progressBar, self.ui.statusLabel)
        self.logic.onLog = self.ui.logTextEdit.appendPlainText
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)

    # ---- the template's parameter-node lifecycle ------------------------------------------------
    def cleanup(self) -> None:
        if self.logic is not None:
            self.logic.cancel()
            self.logic.resetSession()  # deletes what the session kept on disk
        self.removeObservers()
        self._observedInputs = []

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.logic.cancel()
        self.logic.resetSession()
        self.setParameterNode(None)
        self.showResults()

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        """Bind ``inputParameterNode`` (a parameter node wrapper, or None) to the GUI and observe it."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        """The parameters changed; subclasses refresh their own widgets, then call this."""
        self._updateInputObservation()
        self.updateButtons()

    def _updateInputObservation(self) -> None:
        """Observe every selected input (the wrapper stores node references but does not observe them).

        Point lists are observed for added/moved/removed points, other nodes (models,
        segmentations) for any modification; each edit calls :meth:`onInputEdited`.
        """
        wanted = self.logic.inputNodes(self._parameterNode) if self._parameterNode is not None else []
        kept = []
        for node, events in self._observedInputs:
            if any(node is other for other in wanted):
                kept.append((node, events))
                continue
            for event in events:
                self.removeObserver(node, event, self.onInputEdited)
        for node in wanted:
            if any(node is other for other, _events in kept):
                continue
            markups = slicer.vtkMRMLMarkupsNode.SafeDownCast(node)
            events = POINT_EVENTS if markups is not None else (vtk.vtkCommand.ModifiedEvent,)
            for event in events:
                self.addObserver(node, event, self.onInputEdited)
            kept.append((node, events))
        self._observedInputs = kept

    def onInputEdited(self, caller, event) -> None:
        """A selected input changed (e.g. a point was placed): Apply may have become possible or not."""
        self.updateButtons()

    def updateButtons(self) -> None:
        """Apply when the inputs allow a run and none is going; Cancel while one is."""
        reason = self.logic.cannotRunReason(self._parameterNode)
        running = self.logic.isRunning()
        self.ui.applyButton.enabled = reason is None and not running
        self.ui.applyButton.toolTip = reason or self.applyToolTip
        self.ui.cancelButton.enabled = running

    # ---- running ---------------------------------------------------------------------------------
    def onApplyButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(self.startErrorText, waitCursor=True):
            dependencies.ensureDependencies()
            self.startRun()

    def startRun(self, **startOptions) -> None:
        """Start the Logic's run on the current parameters (``startOptions`` go to ``logic.start``)."""
        self.ui.logTextEdit.clear()  # the Details area shows the current run only
        self.logic.start(self._parameterNode, self.progress.update, self.onRunFinished, **startOptions)
        # Progress arrives through the Qt event loop, so showing the bar after the start is in time.
        self.progress.started(self.startingText)
        self.onParameterNodeModified()

    def onCancelButton(self) -> None:
        self.logic.cancel()

    def onRunFinished(self, outcome: WorkerOutcome, result, interactive: bool = True) -> None:
        """The run ended (its results, if any, are in the scene).

        A failure is logged with the worker's last lines and, when ``interactive`` (a run
        the user started, not a live refit), shown in a dialog with its one-line reason.
        """
        self.progress.finished(outcome)
        if outcome.ok:
            self.showResults()
        elif not outcome.cancelled:
            logging.error("%s\n%s", outcome.message, "\n".join(outcome.log_tail))
            if interactive:
                slicer.util.errorDisplay(outcome.message + "\n\n" + DETAILS_HINT, windowTitle=RUN_FAILED_TITLE)
        self.onParameterNodeModified()

    def showResults(self) -> None:
        """Show the Logic's last result (or the empty state when there is none)."""
        raise NotImplementedError


class WorkerModuleWidget(WorkerPanelWidget):
    """A :class:`WorkerPanelWidget` with a preset choice: the ``preset`` parameter in ``presetComboBox``."""

    def setupPanel(self, uiFile: str, applyToolTip: str, startErrorText: str, startingText: str,
                   presets: Sequence[str], presetTitles: Optional[dict] = None) -> None:
        """As :meth:`WorkerPanelWidget.setupPanel`; ``presets`` are the values of the ``preset`` parameter,
        listed in ``presetComboBox`` under the titles a clinician reads (``panel.PRESET_TITLES``, or the
        module's own ``presetTitles``)."""
        super().setupPanel(uiFile, applyToolTip, startErrorText, startingText)
        self.presetChoice = ChoiceComboBox(self.ui.presetComboBox, presets, presetTitles or PRESET_TITLES,
                                           lambda: self._parameterNode.preset if self._parameterNode else None,
                                           lambda value: setattr(self._parameterNode, "preset", value))

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        """The parameters changed: show the preset, then what every panel does."""
        self.presetChoice.update()
        super().onParameterNodeModified(caller, event)


class LiveRefitModuleWidget(WorkerModuleWidget):
    """A :class:`WorkerModuleWidget` that also refits live while inputs are edited.

    For modules whose Logic's ``start`` takes ``warmStart``, ``quality`` (``"preview"`` or
    ``"full"``) and ``server`` (a ``live.PersistentWorker``). ``setup`` calls
    :meth:`setupLiveRefit`; the module calls ``self.liveRefit.edited()`` on each edit
    while auto-update is on and :meth:`stopLiveRefit` when it is switched off.
    """

    def setupLiveRefit(self, previewShownText: str) -> None:
        """Prepare live refit: a ``LiveRefit`` scheduler; the persistent worker starts with the first run."""
        self.server: Optional[PersistentWorker] = None
        self._dependenciesChecked = False
        self.previewShownText = previewShownText
        self.liveRefit = LiveRefit(self.startLiveRun)

    def stopLiveRefit(self) -> None:
        """Stop scheduling, cancel the live run and end the persistent worker."""
        self.liveRefit.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def startLiveRun(self, quality: str):
        """Start a live run (``"preview"`` or ``"full"``) in the persistent worker; None when it cannot start."""
        reason = self.logic.cannotRunReason(self._parameterNode)
        if reason is not None or self.logic.isRunning():
            self.ui.statusLabel.text = reason or self.ui.statusLabel.text
            return None
        try:
            if not self._dependenciesChecked:  # before the first run, Apply or not (torch may be missing)
                dependencies.ensureDependencies()
                self._dependenciesChecked = True
            if self.server is None:
                self.server = PersistentWorker(onLog=self.ui.logTextEdit.appendPlainText)
            self.ui.logTextEdit.clear()
            job = self.logic.start(self._parameterNode, self.progress.update,
                                   lambda outcome, result: self.onLiveRunFinished(quality, outcome, result),
                                   warmStart=True, quality=quality, server=self.server)
        except (ValueError, RuntimeError, OSError) as error:  # live refit: report in the panel, no pop-up
            self.ui.statusLabel.text = str(error)
            return None
        self.progress.started(LIVE_STATUS[quality])
        self.updateButtons()
        return job

    def onLiveRunFinished(self, quality: str, outcome: WorkerOutcome, result) -> None:
        """A live run ended: shown like any run (failures without a dialog), then the scheduler decides."""
        self.onRunFinished(outcome, result, interactive=False)
        if outcome.ok and quality == "preview":
            self.ui.statusLabel.text = self.previewShownText
        self.liveRefit.finished(quality, outcome)
