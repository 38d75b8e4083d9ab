"""`gankit explore`'s request parameters: each view's names, read and checked once, with one
clear sentence per refusal (`RequestError`, carrying its HTTP status), and the sampling options
as the library takes them and as the CLI's flags."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gankit import generate as gen
from gankit.errors import GankitError

#: The most images one grid request draws.
MAX_GRID = 64

_STYLE = ("class", "psi", "cutoff", "noise", "resolution", "alpha")
#: Each view's parameters (names starting with "_", e.g. a cache buster, are ignored).
PARAMS: dict[str, tuple[str, ...]] = {
    "grid": ("seeds", *_STYLE, "latent"),
    "interp": ("a", "b", "steps", *_STYLE),
    "mix": ("row", "col", "layers", "row_latent", *_STYLE),
    "scatter": ("seed", "num"),
    "translate": ("direction",),
}
_SEED_RANGE = re.compile(r"^(\d+)-(\d+)$")
#: The CLI's flags in the library's messages -> the page's parameter names.
_PAGE_WORDS = (
    (re.compile(r"--trunc-cutoff\b"), "cutoff"),
    (re.compile(r"--trunc\b"), "psi"),
    (re.compile(r"--noise-mode\b"), "noise"),
    (re.compile(r"--styles\b"), "layers"),
    (re.compile(r"--class\b"), "class"),
    (re.compile(r"--stage\b"), "stage"),
)


class RequestError(GankitError):
    """A request `gankit explore` refuses, with its HTTP status (400 unless given)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def page_message(message: str) -> str:
    """A library error's message in the page's words: `--trunc 0.5` reads `psi 0.5`."""
    for pattern, word in _PAGE_WORDS:
        message = pattern.sub(word, message)
    return message


class Params:
    """One request's parameters for a view: each read and checked once; names the view does
    not take are refused, naming those it does."""

    def __init__(self, values: Mapping[str, Any], view: str) -> None:
        allowed = PARAMS[view]
        unknown = sorted(k for k in values if k not in allowed and not k.startswith("_"))
        if unknown:
            raise RequestError(
                f"unknown parameter {unknown[0]!r} for the {view} view; it takes "
                f"{', '.join(allowed)}"
            )
        self.view = view
        self.values = {k: _as_text(v) for k, v in values.items() if k in allowed}

    def text(self, name: str) -> str | None:
        """The parameter as given (None when absent or empty)."""
        value = self.values.get(name)
        return value if value else None

    def integer(self, name: str, default: int | None = None, lo: int | None = None,
                hi: int | None = None) -> int | None:  # fmt: skip
        """An integer parameter within [lo, hi] (either end open when None)."""
        text = self.text(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise RequestError(f"{name}={text!r} is not a whole number") from None
        if lo is not None and value < lo:
            raise RequestError(
                f"{name}={value} is below {lo}" + ("" if hi is None else f" (use {lo} .. {hi})")
            )
        if hi is not None and value > hi:
            raise RequestError(
                f"{name}={value} is above {hi}" + ("" if lo is None else f" (use {lo} .. {hi})")
            )
        return value

    def number(self, name: str) -> float | None:
        """A finite float parameter."""
        text = self.text(name)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise RequestError(f"{name}={text!r} is not a number") from None
        if not math.isfinite(value):
            raise RequestError(f"{name}={text!r} is not a finite number")
        return value

    def seed(self, name: str, default: int | None = None) -> int:
        """A seed in 0 .. 2**32 - 1; required unless it has a default."""
        text = self.text(name)
        if text is None:
            if default is None:
                raise RequestError(f"the {self.view} view needs {name}=SEED (0 .. {gen.MAX_SEED})")
            return default
        return _seed(text, name)

    def seeds(self, name: str) -> list[int]:
        """Seeds as a list `0,5,9` with ranges `10-13`: at least one, at most `MAX_GRID`."""
        text = self.text(name)
        if text is None:
            raise RequestError(f"the {self.view} view needs {name}=LIST, e.g. {name}=0,1,2,3")
        seeds: list[int] = []
        for item in (part.strip() for part in text.split(",")):
            match = _SEED_RANGE.match(item)
            if match and int(match.group(1)) <= int(match.group(2)):
                first, last = _seed(match.group(1), name), _seed(match.group(2), name)
                if last - first >= MAX_GRID:
                    raise RequestError(f"a grid holds at most {MAX_GRID} images; {item} is more")
                seeds += range(first, last + 1)
            else:
                seeds.append(_seed(item, name))
        if len(seeds) > MAX_GRID:
            raise RequestError(f"a grid holds at most {MAX_GRID} images; got {len(seeds)} seeds")
        return seeds


def _as_text(value: Any) -> str:
    """A parameter value from a query string or a JSON body, as text."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if value is None:
        return ""
    return str(value).strip()


def _seed(text: str, name: str) -> int:
    """`text` as a seed, or a `RequestError` naming the valid range."""
    try:
        seed = int(text)
    except ValueError:
        raise RequestError(
            f"{name}={text!r}: seeds are whole numbers 0 .. {gen.MAX_SEED}, as a list 0,1,2 or "
            "a range 0-7"
        ) from None
    if not 0 <= seed <= gen.MAX_SEED:
        raise RequestError(f"seed {seed} is outside 0 .. {gen.MAX_SEED}")
    return seed


@dataclass
class Options:
    """A view's sampling options, as the library takes them and as the CLI's flags."""

    class_index: int | None
    truncation_psi: float | None
    truncation_cutoff: int | None
    noise_mode: str | None
    stage: tuple[int, float | None] | None

    @classmethod
    def read(cls, p: Params) -> Options:
        resolution, alpha = p.integer("resolution"), p.number("alpha")
        if alpha is not None and resolution is None:
            raise RequestError("alpha sets the fade-in of a stage: give resolution=R with it")
        return cls(
            p.integer("class"), p.number("psi"), p.integer("cutoff"), p.text("noise"),
            None if resolution is None else (resolution, alpha),
        )  # fmt: skip

    def kwargs(self, with_class: bool = True) -> dict[str, Any]:
        """Keyword arguments of `generate.sample` / `stylemix.mix_styles`."""
        out = dict(truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff,
                   noise_mode=self.noise_mode, stage=self.stage)  # fmt: skip
        return {"class_index": self.class_index, **out} if with_class else out

    def flags(self, with_class: bool = True, with_stage: bool = True) -> list[str]:
        """The same options as `gankit generate` / `style-mix` / `video` flags."""
        flags = []
        if with_class and self.class_index is not None:
            flags += ["--class", str(self.class_index)]
        if self.truncation_psi is not None:
            flags += ["--trunc", repr(self.truncation_psi)]
        if self.truncation_cutoff is not None:
            flags += ["--trunc-cutoff", str(self.truncation_cutoff)]
        if self.noise_mode is not None:
            flags += ["--noise-mode", self.noise_mode]
        if with_stage and self.stage is not None:
            res, alpha = self.stage
            flags += ["--stage", str(res) if alpha is None else f"{res}:{alpha!r}"]
        return flags
