"""Typed configuration dataclasses that round-trip through JSON.

Every capability's ``config.py`` defines ``@dataclass`` classes deriving from
:class:`ConfigBase`. A config is saved as JSON next to every output, so a run
can be reproduced from its files alone.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Optional, TypeVar

from AnatomyINRLib.core.errors import InputError

T = TypeVar("T", bound="ConfigBase")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected an object, got {type(value).__name__}")
        return tp.from_dict(value, _where=where)
    if (origin is tuple or tp is tuple) and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in typing.get_args(tp):
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return arg.from_dict(value, _where=where)
        if isinstance(value, list):
            return tuple(value) if any(typing.get_origin(a) is tuple for a in typing.get_args(tp)) else value
    return value


@dataclasses.dataclass
class ConfigBase:
    """Base of every config dataclass: ``to_dict``/``from_dict``/JSON and validation."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (nested configs become nested dicts)."""
        return _to_plain(self)

    def to_json(self, indent: int = 2) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], _where: str | None = None) -> T:
        """Build from a dict; unknown keys are an error (they are usually typos).

        Raises:
            InputError: unknown key or wrongly shaped value.
        """
        where = _where or cls.__name__
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
        kwargs = {k: _from_plain(hints.get(k), v, f"{where}.{k}") for k, v in data.items()}
        obj = cls(**kwargs)
        obj.validate()
        return obj

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """Parse JSON text produced by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{cls.__name__}: invalid JSON ({exc})") from exc
        return cls.from_dict(data)

    def replace(self: T, **changes: Any) -> T:
        """A validated copy with some fields changed."""
        obj = dataclasses.replace(self, **changes)
        obj.validate()
        return obj

    def validate(self) -> None:
        """Check field values; subclasses raise :class:`InputError` naming the field."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ConfigBase):
                value.validate()


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Raise InputError unless ``value`` is a positive (or non-negative) finite number."""
    ok = isinstance(value, (int, float)) and value == value and value not in (float("inf"),)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}: expected a finite number {bound}, got {value!r}")


def check_int(name: str, value: Any, minimum: int = 1, maximum: Optional[int] = None) -> None:
    """Raise InputError unless ``value`` is an integer in [``minimum``, ``maximum``]."""
    too_big = maximum is not None and isinstance(value, int) and value > maximum
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or too_big:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if maximum is not None:
            expected = f"an integer in [{minimum}, {maximum}]"
        raise InputError(f"{name}: expected {expected}, got {value!r}")


# Seeds: integers both numpy (default_rng: >= 0, any size) and torch (manual_seed: below 2**64,
# stored as int64 in places) accept, so one rule holds for the CLI and every entry function.
SEED_MAX = 2**63 - 1


def check_seed(value: Any, name: str = "seed") -> int:
    """The seed as a plain int; InputError unless it is an integer in [0, 2**63 - 1].

    numpy integers are accepted; bools, floats, strings and None are not.
    """
    import numbers

    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    check_int(name, value, minimum=0, maximum=SEED_MAX)
    return value


def check_choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    """Raise InputError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise InputError(f"{name}: expected one of {list(choices)}, got {value!r}")
