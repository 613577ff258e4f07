"""A name → entry registry shared by spaces, proxies and devices (the timm pattern)."""
from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from zsdist.errors import ZsdistError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries keyed by name; lookups of unknown names suggest the closest known one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ZsdistError(self.unknown_message(name)) from None

    def remove(self, name: str) -> T:
        """Take an entry out and return it, e.g. to add a changed copy under its name (inside `temporarily`)."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    @contextlib.contextmanager
    def temporarily(self) -> Iterator[None]:
        """Undo at the end of the block what was added or removed in it: tests and the CONTRIBUTING recipes register
        examples for real, as a plugin would, and leave the registry as they found it for the rest of the process."""
        saved = dict(self._entries)
        try:
            yield
        finally:
            self._entries.clear()
            self._entries.update(saved)

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self._entries, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{name}'{hint} (known: {', '.join(sorted(self._entries))})"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
