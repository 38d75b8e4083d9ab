"""Typed run configuration: dataclasses, YAML load/save, dotted overrides, and validation.

Data flows one way: CLI flags / YAML -> a plain dict -> `config_from_dict` (which rejects unknown
keys and wrong types, naming them) -> `Config`. Model `arch` and recipe `args` are checked against
the registered builder's signature, so a typo in `model.arch.chanel_max` fails before training.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gankit.atomic import write_text_atomic
from gankit.errors import ConfigError

AmpMode = Literal["none", "bf16", "fp16"]


@dataclass
class ModelConfig:
    """Which registered model to build and its architecture arguments."""

    name: str = "auto"  # auto: the recipe's default model for the data (images or 2-D points)
    arch: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecipeConfig:
    """Which registered recipe (the paper's training maths) and its hyper-parameters."""

    name: str = "progan"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Training data: a built-in name, a folder of images, or a zip of them."""

    name: str = "digits"
    root: str | None = None
    resolution: int | None = None
    channels: int | None = None
    #: The dataset builder's own arguments (e.g. `channels_b` of unpaired A/B data).
    args: dict[str, Any] = field(default_factory=dict)
    skip_bad_images: bool = False
    mirror: bool = False
    workers: int = 0


@dataclass
class TrainConfig:
    """Loop mechanics. `None` means: the recipe's default, filled in when the run starts."""

    out: str = "runs/run"
    kimg: float | None = None
    batch_size: int | None = None
    #: Images per forward pass on each device (gradient accumulation); 0: the whole batch at once.
    batch_gpu: int = 0
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch's CPU threads (None: PyTorch's default, one per core)
    amp: AmpMode = "none"
    channels_last: bool = False
    compile: bool = False
    ema_kimg: float | None = None
    #: G_ema's half-life is min(ema_kimg * 1000, images shown * ema_rampup); 0 = no ramp-up.
    ema_rampup: float | None = None
    tick_kimg: float | None = None
    snapshot_kimg: float | None = None
    sample_kimg: float | None = None
    keep_checkpoints: int = 3
    grid_size: int = 64
    metrics: list[str] = field(default_factory=list)
    metrics_kimg: float | None = None
    max_minutes: float | None = None  # stop (with a snapshot) after this much training time
    progress: bool = True


@dataclass
class Config:
    """The whole, resolved description of a run; saved as `config.yaml` in the run directory."""

    model: ModelConfig = field(default_factory=ModelConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ---------------------------------------------------------------------------------------------
# Type checking of plain values against annotations


def check_value(value: Any, annotation: Any, where: str) -> Any:
    """Return `value` if it fits `annotation` (ints widen to float), else raise a ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    if annotation is type(None):
        if value is None:
            return None
        raise _type_error(value, "null", where)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)] if value is not None else list(args)
        if len(options) == 1:  # `X | None` with a value: X's own (more precise) error
            return check_value(value, options[0], where)
        for option in options:
            try:
                return check_value(value, option, where)
            except ConfigError:
                continue
        raise _type_error(value, _describe(annotation), where)
    if origin is Literal:
        # By type as well as value: True == 1 and 3.0 == 3, but neither is the literal 1 or 3.
        if any(type(value) is type(arg) and value == arg for arg in args):
            return value
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
    if origin in (list, tuple) or annotation in (list, tuple):
        return _check_sequence(value, annotation, origin or annotation, args, where)
    if origin is dict or annotation is dict:
        return _check_mapping(value, args, where)
    return _check_scalar(value, annotation, where)


def _check_scalar(value: Any, annotation: Any, where: str) -> Any:
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise _type_error(value, annotation.__name__, where)
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise _type_error(value, _describe(annotation), where)


def _check_sequence(value: Any, annotation: Any, kind: type, args: tuple, where: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise _type_error(value, _describe(annotation), where)
    if kind is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(
            check_value(v, a, f"{where}[{i}]")
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    item = args[0] if args else Any
    items = [check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if kind is tuple else items


def _check_mapping(value: Any, args: tuple, where: str) -> dict:
    if not isinstance(value, dict):
        raise _type_error(value, "a mapping", where)
    key_type, value_type = args if args else (Any, Any)
    return {
        check_value(k, key_type, f"{where} key"): check_value(v, value_type, f"{where}.{k}")
        for k, v in value.items()
    }


def _describe(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None)
    return (
        text if text and not typing.get_args(annotation) else str(annotation).replace("typing.", "")
    )


def _type_error(value: Any, expected: str, where: str) -> ConfigError:
    return ConfigError(f"{where}: expected {expected}, got {value!r} ({type(value).__name__})")


# ---------------------------------------------------------------------------------------------
# Dataclasses <-> dicts


def _unknown_key_error(key: str, known: Iterable[str], where: str) -> ConfigError:
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" Did you mean {where}{close[0]!r}?" if close else ""
    return ConfigError(
        f"unknown config key {where}{key!r}.{hint} Known keys here: {', '.join(known)}"
    )


def dataclass_from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise _type_error(data, "a mapping", where.rstrip(".") or "config")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key_error(key, fields, where)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = dataclass_from_dict(hint, value, f"{where}{key}.")
        else:
            values[key] = check_value(value, hint, f"{where}{key}")
    return cls(**values)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a nested dict (YAML + overrides) into a Config."""
    return dataclass_from_dict(Config, data)


def config_to_dict(config: Config) -> dict[str, Any]:
    """The plain nested dict form of a Config (YAML-serialisable)."""
    return dataclasses.asdict(config)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but `3e-4` and `1e9` are floats as in YAML 1.2 (PyYAML follows
    YAML 1.1, where a float needs a dot: `lr: 3e-4` would be the string '3e-4')."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """YAML text -> Python values, with YAML 1.2 floats (see `_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file into a dict, with a clear error for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return data


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (a full disk leaves the old file whole)."""
    write_text_atomic(Path(path), dump_config(config))


def dump_config(config: Config) -> str:
    """The YAML text of a config."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------------------------------
# Dotted overrides


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (`32`, `[1, 2]`)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.batch_size=32")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    if not all(keys):
        raise ConfigError(f"--set {assignment!r}: {dotted!r} is not a dotted key like train.kimg")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    set_dotted(data, keys, value)


def set_dotted(data: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set `data[k0][k1]...[kn] = value`, creating intermediate mappings."""
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"cannot set {'.'.join(keys)}: {key!r} holds {child!r}, not a mapping"
            )
        node = child
    node[keys[-1]] = value


def get_dotted(data: dict[str, Any], keys: list[str]) -> Any:
    """`data[k0][k1]...[kn]`, or None where a key is missing."""
    node: Any = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def flatten_dotted(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}` (empty mappings stay as values)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flatten_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge `update` into a copy of `base` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Builder signatures


def _signature_target(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A registered class is validated against its `__init__`."""
    return fn.__init__ if isinstance(fn, type) else fn


def keyword_parameters(fn: Callable[..., Any], skip: Iterable[str]) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a builder that a user may set (all but `skip`)."""
    skip = set(skip) | {"self"}
    fn = _signature_target(fn)
    return {
        name: p
        for name, p in inspect.signature(fn).parameters.items()
        if name not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def check_arguments(
    fn: Callable[..., Any], args: dict[str, Any], skip: Iterable[str], where: str
) -> dict[str, Any]:
    """Validate `args` against `fn`'s annotated keyword parameters (unknown names, types)."""
    params = keyword_parameters(fn, skip)
    hints = typing.get_type_hints(_signature_target(fn))
    checked = {}
    for key, value in args.items():
        if key not in params:
            raise _unknown_key_error(key, params, f"{where}.")
        checked[key] = check_value(value, hints.get(key, Any), f"{where}.{key}")
    return checked


def default_arguments(fn: Callable[..., Any], skip: Iterable[str]) -> dict[str, Any]:
    """The defaults of a builder's user-settable parameters (those without one are left out)."""
    return {
        name: p.default
        for name, p in keyword_parameters(fn, skip).items()
        if p.default is not inspect.Parameter.empty
    }
