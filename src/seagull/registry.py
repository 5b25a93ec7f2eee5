"""Named registries of frozen metadata entries, in the style of timm's and pyiqa's model lists.

A :class:`Registry` holds entries (frozen dataclasses with a ``name``) in registration order. Each
registry lives next to the things it names (metrics, baselines, suites, vision towers, model
configs) and is filled there, so that command-line choices, defaults and report tables are read
from it instead of from lists kept by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from .errors import ConfigError


class Named(Protocol):
    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)


class Registry(Generic[E]):
    """Entries by name, in registration order; iterating yields the names (as a dict's keys do)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # what an entry is, for messages: "baseline", "vision.kind", ...
        self._entries: dict[str, E] = {}

    def add(self, entry: E) -> E:
        """Register ``entry``; a second entry of the same name is refused."""
        if entry.name in self._entries:
            raise ConfigError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> E:
        """The entry called ``name``; an unknown name is a :class:`ConfigError` listing the choices."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def entries(self) -> tuple[E, ...]:
        return tuple(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
