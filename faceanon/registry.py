"""Name -> factory registries (timm style): one place the CLI, the API and the benchmarks
look up detectors and anonymizers, so every method is reached the same way."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from .errors import UsageError

T = TypeVar("T")


def key_values(items: list[str] | None, what: str) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; an item without ``=`` is a one-line error naming ``what``
    (the option or field it came from)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def format_range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """'1..100' for a closed range, interval notation where an end is open or missing."""
    if low is not None and high is not None and not low_open and not high_open:
        return f"{_num(low)}..{_num(high)}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"in {left}{'-inf' if low is None else _num(low)}, {'inf' if high is None else _num(high)}{right}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(v)


def range_violation(value: float, low: float | None, high: float | None, low_open: bool = False,
                    high_open: bool = False) -> str | None:
    """``must be LOW..HIGH (got VALUE)`` when ``value`` lies outside the range (NaN and
    infinities never lie inside); None when it lies inside."""
    finite = math.isfinite(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if finite and not below and not above:
        return None
    return f"must be {format_range(low, high, low_open, high_open)} (got {_num(value) if finite else value})"


def check_range(name: str, value: float, low: float | None, high: float | None, low_open: bool = False,
                high_open: bool = False) -> None:
    """Raise a one-line :class:`UsageError` ``NAME: must be LOW..HIGH (got VALUE)`` when
    ``value`` lies outside the range."""
    problem = range_violation(value, low, high, low_open, high_open)
    if problem:
        raise UsageError(f"{name}: {problem}")


@dataclass(frozen=True)
class Param:
    """One user-settable parameter of a registered component: its type, default, and the range
    every value must lie in (``low``/``high`` inclusive unless ``*_open``; tuples are checked
    element-wise; strings may set a minimum length)."""

    type: type
    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    min_length: int = 0  # strings: e.g. 1 for a required password; tuples: their exact length
    validate: Callable[[Any], Any] | None = None  # further checks; raises UsageError

    @property
    def range_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.low is None and self.high is None:
            return ""
        return format_range(self.low, self.high, self.low_open, self.high_open)

    def parse(self, name: str, text: Any, owner: str = "") -> Any:
        """The value of ``text`` (a command-line string, or an API value) after type and range
        checks; every failure is a one-line :class:`UsageError` naming the parameter."""
        label = f"{owner} parameter {name}".lstrip()
        if self.type is bool:
            if isinstance(text, bool):
                value = text
            else:
                low = str(text).strip().lower()
                if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise UsageError(f"{label}: expected true/false (got {text!r})")
                value = low in {"1", "true", "yes", "on"}
        elif self.type is tuple:
            try:
                items = text.split(",") if isinstance(text, str) else list(text)
                value = tuple(int(str(v).strip()) for v in items)
            except (ValueError, TypeError):
                raise UsageError(f"{label}: expected comma-separated integers (got {text!r})") from None
            if self.min_length and len(value) != self.min_length:
                raise UsageError(f"{label}: expected {self.min_length} comma-separated integers (got {text!r})")
            for v in value:
                check_range(label, v, self.low, self.high, self.low_open, self.high_open)
        elif self.type is str:
            if not isinstance(text, str):
                raise UsageError(f"{label}: expected text (got {text!r})")
            value = text
            if len(value) < self.min_length:
                raise UsageError(f"{label}: must not be empty" if self.min_length == 1 else
                                 f"{label}: must have at least {self.min_length} characters")
        else:
            if isinstance(text, bool) or (isinstance(text, float) and self.type is int and not float(text).is_integer()):
                raise UsageError(f"{label}: expected {self.type.__name__} (got {text!r})")
            try:
                value = self.type(text.strip() if isinstance(text, str) else text)
            except (ValueError, TypeError, OverflowError):
                raise UsageError(f"{label}: expected {self.type.__name__} (got {text!r})") from None
            if self.type in (int, float):
                check_range(label, value, self.low, self.high, self.low_open, self.high_open)
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"{label}: must be one of {', '.join(map(str, self.choices))} (got {value!r})")
        if self.validate is not None:
            self.validate(value)
        return value


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def deco(cls: type) -> type:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            cls.name = name
            self._entries[name] = cls
            return cls

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> type:
        try:
            return self._entries[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}; choose from: {', '.join(self.names())}") from None

    def parse_params(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter of ``name`` (defaults filled in), type- and range-checked: bad values
        fail here, before any model is loaded or file read."""
        cls = self.get(name)
        spec: dict[str, Param] = getattr(cls, "params", {})
        unknown = set(params) - set(spec)
        if unknown:
            known = ", ".join(spec) or "none"
            raise UsageError(f"{self.kind} {name!r} has no parameter {', '.join(sorted(unknown))} (parameters: {known})")
        values = {k: p.default for k, p in spec.items()}
        values.update({k: spec[k].parse(k, v, name) for k, v in params.items()})
        return values

    def create(self, name: str, **params: Any) -> T:
        return self.get(name)(**self.parse_params(name, params))
