"""Name -> factory registries (timm style): one place the CLI, the API and the benchmarks
look up detectors and anonymizers, so every method is reached the same way."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from .errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Param:
    """One user-settable parameter of a registered component."""

    type: type
    default: Any
    help: str
    choices: tuple | None = None

    def parse(self, name: str, text: Any) -> Any:
        if not isinstance(text, str):
            value = text
        elif self.type is bool:
            low = text.strip().lower()
            if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise UsageError(f"parameter {name}: expected true/false, got {text!r}")
            value = low in {"1", "true", "yes", "on"}
        elif self.type is tuple:
            try:
                value = tuple(int(v) for v in text.split(","))
            except ValueError:
                raise UsageError(f"parameter {name}: expected comma-separated integers, got {text!r}") from None
        else:
            try:
                value = self.type(text)
            except ValueError:
                raise UsageError(f"parameter {name}: expected {self.type.__name__}, got {text!r}") from None
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"parameter {name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
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

    def create(self, name: str, **params: Any) -> T:
        cls = self.get(name)
        spec: dict[str, Param] = getattr(cls, "params", {})
        unknown = set(params) - set(spec)
        if unknown:
            known = ", ".join(spec) or "none"
            raise UsageError(f"{self.kind} {name!r} has no parameter {', '.join(sorted(unknown))} (parameters: {known})")
        values = {k: p.default for k, p in spec.items()}
        values.update({k: spec[k].parse(k, v) for k, v in params.items()})
        return cls(**values)
