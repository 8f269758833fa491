"""Panel pieces the modules share: preset names a clinician reads, jumping to a point, outliers in the views.

- :class:`ChoiceComboBox` shows a parameter's values under readable titles
  (``"default"`` is shown as "Standard") and keeps the combo box and the parameter
  in step both ways; the parameter node keeps the library's value;
- :func:`jumpToControlPoint` centres the slice views on one control point (a click
  on a residual row);
- :func:`startPlacingPoints` lets the user add points to a list by clicking in the
  slice and 3D views (the markups logic's active list and persistent place mode);
- :func:`showOutlierPoints` copies the points farther than the threshold into a
  locked, red point list of their own, so they stand out in the views while the
  input list is never modified.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import slicer

# The library's preset names as the panel shows them.
PRESET_TITLES = {"auto": "Automatic", "fast": "Fast preview", "default": "Standard", "accurate": "Accurate",
                 "paper": "Paper reproduction"}
OUTLIER_COLOR = (0.95, 0.15, 0.1)


class ChoiceComboBox:
    """A ``QComboBox`` listing ``values`` under ``titles``, bound to a parameter by ``getValue``/``setValue``.

    Args:
        comboBox: The combo box (its items are replaced).
        values: The parameter's allowed values, in display order.
        titles: Display title of each value (a value without one shows as itself).
        getValue: Reads the parameter (None when there is no parameter node).
        setValue: Writes the parameter when the user picks an item.
    """

    def __init__(self, comboBox, values: Sequence[str], titles: dict, getValue: Callable[[], Optional[str]],
                 setValue: Callable[[str], None]) -> None:
        self.comboBox, self.getValue, self.setValue = comboBox, getValue, setValue
        comboBox.clear()
        for value in values:
            comboBox.addItem(titles.get(value, value), value)
        comboBox.connect("currentIndexChanged(int)", self.onIndexChanged)

    def onIndexChanged(self, index: int) -> None:
        value = self.comboBox.itemData(index)
        if value is not None and value != self.getValue():
            self.setValue(value)

    def update(self) -> None:
        """Show the parameter's current value (called when the parameter node changes)."""
        value = self.getValue()
        index = self.comboBox.findData(value) if value is not None else -1
        if index >= 0 and index != self.comboBox.currentIndex:
            blocked = self.comboBox.blockSignals(True)
            self.comboBox.setCurrentIndex(index)
            self.comboBox.blockSignals(blocked)


def jumpToControlPoint(markupsNode, index: int) -> bool:
    """Centre the slice views on control point ``index`` of ``markupsNode``; False if it no longer exists."""
    if markupsNode is None or markupsNode.GetScene() is None or not 0 <= index < markupsNode.GetNumberOfControlPoints():
        return False
    slicer.modules.markups.logic().JumpSlicesToNthPointInMarkup(markupsNode.GetID(), index, True)
    return True


def startPlacingPoints(markupsNode) -> None:
    """Make ``markupsNode`` the active list and start persistent place mode: each view click adds a point.

    Place mode stays on until the user leaves it (a right click in a view, or the
    mouse-mode toolbar), so many points are placed without pressing the button again.
    """
    logic = slicer.modules.markups.logic()
    logic.SetActiveList(markupsNode)
    logic.StartPlaceMode(True)


def showOutlierPoints(outlierNode, name: str, positions: np.ndarray, labels: Sequence[str]):
    """Put the outlier points into ``outlierNode`` (created, locked and red when None); returns the node.

    Args:
        outlierNode: The output point list of an earlier call, or None.
        name: Name of a new node.
        positions: (M, 3) RAS mm of the outlier points (M may be 0).
        labels: Their labels (those of the input points).
    """
    if outlierNode is None or outlierNode.GetScene() is None:
        outlierNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
        outlierNode.CreateDefaultDisplayNodes()
        display = outlierNode.GetDisplayNode()
        display.SetSelectedColor(*OUTLIER_COLOR)
        display.SetColor(*OUTLIER_COLOR)
        outlierNode.SetLocked(True)  # a result, not something to edit
    slicer.util.updateMarkupsControlPointsFromArray(outlierNode, np.asarray(positions, dtype=float).reshape(-1, 3))
    for index, label in enumerate(labels):
        outlierNode.SetNthControlPointLabel(index, str(label))
    return outlierNode
