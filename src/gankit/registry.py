"""One registry mechanism: name -> builder, filled by a decorator next to the definition.

Registries are used only at the edge where a config becomes objects; library code imports
directly so that go-to-definition always works.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gankit.errors import ConfigError

T = TypeVar("T", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered builder and its one-line description."""

    name: str
    fn: T
    description: str


class Registry(Generic[T]):
    """Maps lowercase, hyphenated names to builders, with a 'did you mean' error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator that registers `fn` under `name` (first docstring line as description)."""
        if name != name.lower() or " " in name or "_" in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase and hyphenated")

        def decorate(fn: T) -> T:
            if name in self._entries and self._entries[name].fn is not fn:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc_lines = (fn.__doc__ or "").strip().splitlines()
            text = description or (doc_lines[0] if doc_lines else "")
            self._entries[name] = Entry(name, fn, text)
            return fn

        return decorate

    def get(self, name: str) -> T:
        """The builder registered as `name`; an unknown name raises a ConfigError with suggestions."""
        return self.entry(name).fn

    def entry(self, name: str) -> Entry[T]:
        """The full registry entry for `name`."""
        _load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The error text for an unknown name: the close matches, then every known name."""
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}.{hint} "
            f"Known {self.kind}s: {', '.join(self.names())}. (`gankit list` shows them all.)"
        )

    def names(self) -> list[str]:
        """All registered names, sorted."""
        _load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        _load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        _load_builtins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))


MODELS: Registry[Callable[..., Any]] = Registry("model")
RECIPES: Registry[Callable[..., Any]] = Registry("recipe")
DATASETS: Registry[Callable[..., Any]] = Registry("dataset")
METRICS: Registry[Callable[..., Any]] = Registry("metric")

_loaded = False


def _load_builtins() -> None:
    """Import the modules whose decorators fill the registries (once, on first lookup)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import gankit.data.builtin
    import gankit.data.toy
    import gankit.metrics
    import gankit.models
    import gankit.recipes  # noqa: F401
