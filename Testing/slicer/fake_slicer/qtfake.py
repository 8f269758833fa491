"""Fake ``qt`` and ``ctk``: widgets as plain Python objects with PythonQt-style signals.

What the modules rely on, and nothing else:

- ``widget.connect("signal(args)", slot)``; a slot taking fewer arguments than the
  signal gets the leading ones (PythonQt does the same);
- properties as attributes (``button.enabled = False``, ``label.text``);
- setting a value programmatically emits the change signal (as Qt does) unless
  ``blockSignals(True)``;
- ``QTimer`` and ``QTimer.singleShot`` go through :mod:`fake_slicer.eventloop`;
- :func:`loadUI` builds the widgets of a Designer ``.ui`` file by class and
  objectName, with its properties (dynamic ones such as ``SlicerParameterName``
  included) and its signal/slot connections. An unknown widget class is an error,
  so a ``.ui`` using a widget the fake lacks fails loudly.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

from fake_slicer import eventloop


def _callSlot(slot: Callable, args: tuple):
    try:
        parameters = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return slot(*args)
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return slot(*args)
    count = sum(1 for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    return slot(*args[:count])


class QObject:
    def __init__(self, *args, **kwargs) -> None:
        self._slots: dict = {}
        self._blocked = False
        self._dynamic: dict = {}
        self.objectName = ""

    def connect(self, signal: str, slot: Callable) -> bool:
        self._slots.setdefault(signal.split("(")[0], []).append(slot)
        return True

    def disconnect(self, signal: str, slot: Optional[Callable] = None) -> bool:
        name = signal.split("(")[0]
        self._slots[name] = [s for s in self._slots.get(name, []) if slot is not None and s != slot]
        return True

    def emit(self, signal: str, *args) -> None:
        """Test and fake internals: emit a signal to its connected slots."""
        if self._blocked:
            return
        for slot in list(self._slots.get(signal, [])):
            _callSlot(slot, args)

    def blockSignals(self, block: bool) -> bool:
        previous, self._blocked = self._blocked, bool(block)
        return previous

    def setProperty(self, name: str, value) -> None:
        if hasattr(type(self), name) or name in self.__dict__:
            setattr(self, name, value)
        else:
            self._dynamic[name] = value

    def property(self, name: str):
        return self._dynamic.get(name, getattr(self, name, None))


class QWidget(QObject):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.enabled, self.visible, self.toolTip = True, True, ""
        self.children: list = []

    def setEnabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def setVisible(self, visible: bool) -> None:
        self.visible = bool(visible)

    def show(self) -> None:
        self.visible = True

    def hide(self) -> None:
        self.visible = False


class QLayout(QObject):
    def __init__(self, *args) -> None:
        super().__init__()
        self.widgets: list = []

    def addWidget(self, widget, *args) -> None:
        self.widgets.append(widget)

    def addStretch(self, *args) -> None:
        pass


QVBoxLayout = QFormLayout = QHBoxLayout = QLayout


class QLabel(QWidget):
    def __init__(self, text: str = "", *args) -> None:
        super().__init__()
        self.text, self.wordWrap = text, False


class QAbstractButton(QWidget):
    def __init__(self, text: str = "", *args) -> None:
        super().__init__()
        self.text, self.checkable = text, False
        self._checked = False

    @property
    def checked(self) -> bool:
        return self._checked

    @checked.setter
    def checked(self, value: bool) -> None:
        if bool(value) != self._checked:
            self._checked = bool(value)
            self.emit("toggled", self._checked)

    def setChecked(self, value: bool) -> None:
        self.checked = value

    def isChecked(self) -> bool:
        return self._checked

    def click(self) -> None:
        """A user click: nothing happens on a disabled button (as in Qt)."""
        if not self.enabled:
            return
        if self.checkable:
            self.checked = not self.checked
        self.emit("clicked", self._checked)


class QPushButton(QAbstractButton):
    pass


class QCheckBox(QAbstractButton):
    def __init__(self, text: str = "", *args) -> None:
        super().__init__(text)
        self.checkable = True


class QProgressBar(QWidget):
    def __init__(self, *args) -> None:
        super().__init__()
        self.value, self.minimum, self.maximum = 0, 0, 100


class _ValueWidget(QWidget):
    """A double spin box / slider: ``value`` clamped to [minimum, maximum], ``valueChanged(double)``."""

    def __init__(self, *args) -> None:
        super().__init__()
        self.minimum, self.maximum, self.singleStep, self.decimals = 0.0, 99.99, 1.0, 2
        self.suffix = ""
        self._value = 0.0

    @property
    def value(self) -> float:
        return self._value

    @value.setter
    def value(self, value: float) -> None:
        value = min(self.maximum, max(self.minimum, round(float(value), int(self.decimals))))
        if value != self._value:
            self._value = value
            self.emit("valueChanged", value)

    def setValue(self, value: float) -> None:
        self.value = value

    def setRange(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = float(minimum), float(maximum)
        self.value = self._value

    def setMinimum(self, minimum: float) -> None:
        self.setRange(minimum, max(minimum, self.maximum))

    def setMaximum(self, maximum: float) -> None:
        self.setRange(min(self.minimum, maximum), maximum)

    def setSingleStep(self, step: float) -> None:
        self.singleStep = float(step)


class QDoubleSpinBox(_ValueWidget):
    pass


class QSpinBox(_ValueWidget):
    """An integer spin box: ``value`` is an int (``valueChanged(int)`` in Qt; the wrapper's connector reads it)."""

    def __init__(self, *args) -> None:
        super().__init__()
        self.decimals, self._value = 0, 0

    @property
    def value(self) -> int:
        return int(self._value)

    @value.setter
    def value(self, value) -> None:
        value = int(min(self.maximum, max(self.minimum, round(float(value)))))
        if value != self._value:
            self._value = value
            self.emit("valueChanged", value)


class QLineEdit(QWidget):
    """Text entry: setting ``text`` emits ``textChanged(QString)``."""

    def __init__(self, *args) -> None:
        super().__init__()
        self._text, self.placeholderText = "", ""

    @property
    def text(self) -> str:
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        if str(value) != self._text:
            self._text = str(value)
            self.emit("textChanged", self._text)

    def setText(self, value: str) -> None:
        self.text = value


class QComboBox(QWidget):
    def __init__(self, *args) -> None:
        super().__init__()
        self._items: list = []
        self._index = -1

    def addItem(self, text: str, userData=None) -> None:
        self._items.append((str(text), userData))
        if self._index < 0:
            self.currentIndex = 0

    def clear(self) -> None:
        self._items, self._index = [], -1

    @property
    def count(self) -> int:
        return len(self._items)

    def itemText(self, index: int) -> str:
        return self._items[index][0] if 0 <= index < len(self._items) else ""

    def itemData(self, index: int):
        return self._items[index][1] if 0 <= index < len(self._items) else None

    def findText(self, text: str) -> int:
        return next((i for i, (t, _d) in enumerate(self._items) if t == text), -1)

    def findData(self, data) -> int:
        return next((i for i, (_t, d) in enumerate(self._items) if d == data), -1)

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        if index != self._index and -1 <= index < len(self._items):
            self._index = index
            self.emit("currentIndexChanged", index)
            self.emit("currentTextChanged", self.currentText)

    def setCurrentIndex(self, index: int) -> None:
        self.currentIndex = index

    @property
    def currentText(self) -> str:
        return self.itemText(self._index)

    def setCurrentText(self, text: str) -> None:
        self.currentIndex = self.findText(text)

    @property
    def currentData(self):
        return self.itemData(self._index)


class Qt:
    DisplayRole, UserRole, ToolTipRole, BackgroundRole = 0, 256, 3, 8


class QColor:
    def __init__(self, *rgb) -> None:
        self.rgb = tuple(rgb)


class QBrush:
    def __init__(self, color=None) -> None:
        self.color = color


class QTimer(QObject):
    def __init__(self, *args) -> None:
        super().__init__()
        self.interval, self.singleShot_ = 0, False
        self._entry = None

    def setSingleShot(self, single: bool) -> None:
        self.singleShot_ = bool(single)

    def setInterval(self, ms: int) -> None:
        self.interval = int(ms)

    def start(self, ms: Optional[int] = None) -> None:
        if ms is not None:
            self.interval = int(ms)
        self.stop()
        self._entry = eventloop.schedule(self.interval / 1000.0, self._timeout)

    def stop(self) -> None:
        if self._entry is not None:
            eventloop.cancel(self._entry)
            self._entry = None

    def isActive(self) -> bool:
        return self._entry is not None

    def _timeout(self) -> None:
        self._entry = None
        if not self.singleShot_:
            self._entry = eventloop.schedule(self.interval / 1000.0, self._timeout)
        self.emit("timeout")

    @staticmethod
    def singleShot(ms: int, callback: Callable) -> None:
        eventloop.schedule(ms / 1000.0, callback)
