"""One registry mechanism: name -> builder, filled by a decorator next to the definition.

Registries are used only at the edge where a config becomes objects; library code imports
directly so that go-to-definition always works. A registration also says what the tests that
are generated from the registries need to know (as timm's do): the kinds of data a model or
recipe is for, the resolutions a model builds at, the arch of its smallest instance, and the
range of its images, e.g. `@MODELS.register("dcgan", resolutions=(28, 32, 64), ...)`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from gankit.errors import ConfigError

T = TypeVar("T", bound=Callable[..., Any])


#: The kinds of data gankit knows (`Dataset.kind`): images (labelled or not), 2-D points, and
#: unpaired A/B images.
DATA_KINDS = ("images", "points", "unpaired")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered builder, its one-line description, and what its generated tests need.

    The defaults fit an unconditional image model or recipe, so a registration that names
    none of them keeps working (its generated tests use images at 32x32 and default widths).
    """

    name: str
    fn: T
    description: str
    #: The data it is for: the kinds a model's nets make and judge, or a recipe trains on.
    kinds: tuple[str, ...] = ("images",)
    #: A model's image resolutions (all, or a few representative ones for one that takes any).
    resolutions: tuple[int, ...] = ()
    #: A model's arch arguments for its smallest instance (tiny widths: fast tests).
    small_arch: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Whether a model takes class labels (`c_dim` > 0).
    labels: bool = False
    #: The range of a model's images (its G ends in tanh: [-1, 1]); None where unbounded.
    output_range: tuple[float, float] | None = (-1.0, 1.0)
    #: Arch arguments added after runs were saved without them, each with the value that
    #: rebuilds those runs' networks (`with_earlier_arch`); new runs get the builder's default.
    earlier_arch: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def with_earlier_arch(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """A saved arch completed with `earlier_arch` for the keys it was saved without."""
        return {**self.earlier_arch, **arch}


class Registry(Generic[T]):
    """Maps lowercase, hyphenated names to builders, with a 'did you mean' error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        name: str,
        description: str = "",
        *,
        kinds: tuple[str, ...] = ("images",),
        resolutions: tuple[int, ...] = (),
        small_arch: Mapping[str, Any] | None = None,
        labels: bool = False,
        output_range: tuple[float, float] | None = (-1.0, 1.0),
        earlier_arch: Mapping[str, Any] | None = None,
    ) -> Callable[[T], T]:
        """Decorator that registers `fn` under `name` (first docstring line as description),
        with the facts its generated tests use (see `Entry`)."""
        if name != name.lower() or " " in name or "_" in name:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase and hyphenated")
        unknown = [k for k in kinds if k not in DATA_KINDS]
        if unknown or not kinds:
            raise ValueError(
                f"{self.kind} {name!r}: kinds must be some of {DATA_KINDS}; got {kinds}"
            )

        def decorate(fn: T) -> T:
            if name in self._entries and self._entries[name].fn is not fn:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc_lines = (fn.__doc__ or "").strip().splitlines()
            text = description or (doc_lines[0] if doc_lines else "")
            self._entries[name] = Entry(
                name,
                fn,
                text,
                kinds=tuple(kinds),
                resolutions=tuple(resolutions),
                small_arch=MappingProxyType(dict(small_arch or {})),
                labels=labels,
                output_range=output_range,
                earlier_arch=MappingProxyType(dict(earlier_arch or {})),
            )
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
