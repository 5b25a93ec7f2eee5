"""What every training config file shares (stages 1-2 in :mod:`.config`, stage 0 in :mod:`.tower.config`).

A config is a dataclass whose fields are options and whose dataclass-typed fields are sections
(``data:``, ``optim:``, ...). This module reads one from YAML the same way for each:

- ``extends: OTHER.yaml`` starts from another config file: its sections are merged key by key, every
  other option (lists and mappings such as ``task_mix`` or ``model_overrides`` included) replaces the
  base's value; ``OTHER.yaml`` may extend a third file.
- Paths: a relative path written in a file is relative to that file (in a base: to the base);
  a relative path given as a ``key=value`` override or a keyword field (``--output``) is relative to
  the working directory. Path options are the fields typed ``Path`` and those made with
  :func:`path_field` (which may also hold a name, e.g. a named model config).
- ``key=value`` overrides with dotted keys and YAML values, then keyword fields, are applied last.
- Every value is checked against its field's type (:func:`build`), naming the key and the type.
- :class:`ConfigBase` gives each config ``to_dict``, ``dump`` and ``digest`` (what a resume must match).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ..errors import ConfigError, SchemaError
from ..records import SampleRecord, read_card, read_shard, shard_paths

EXTENDS = "extends"
_PATH = "seagull_path"  # dataclass field metadata: a path option; its value says which strings are names
EXAMPLES = "src/seagull/train/configs/"  # the configs a user starts from


def _no_names(value: str) -> bool:
    return False


def path_field(*, names: Callable[[str], bool] = _no_names, **kwargs: Any) -> Any:
    """A dataclass field for a path option not typed ``Path``; ``names(value)`` true: a name, not a path."""
    return field(metadata={_PATH: names}, **kwargs)


def is_model_name(value: str) -> bool:
    """A named model config (``seagull-tiny``), not a path."""
    from ..model.config import NAMED_CONFIGS

    return value in NAMED_CONFIGS


def model_field(default: str) -> Any:
    """The ``model`` option: a named model config, or the path of a JSON file or model folder."""
    return path_field(default=default, names=is_model_name)


# ------------------------------------------------------------------ the base class


class ConfigBase:
    """Methods of a top-level config dataclass. ``DIGEST_IGNORES``: dotted keys that do not change the
    optimisation path (output folders, logging, validation), left out of :meth:`digest`."""

    DIGEST_IGNORES: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON values: paths as strings, tuples as lists."""

        def conv(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return conv(dataclasses.asdict(self))

    def dump(self, path: Path) -> None:
        d = self.to_dict()
        d.pop("source", None)
        Path(path).write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")

    def digest(self) -> str:
        """Fingerprint of everything that changes the optimisation path (a resume must match it)."""
        d = self.to_dict()
        for key in ("source", *self.DIGEST_IGNORES):
            *parents, leaf = key.split(".")
            node = d
            for k in parents:
                node = node[k]
            node.pop(leaf, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------ numeric and data checks


def require_at_least_one(cfg: Any, names: tuple[str, ...], section: str = "") -> None:
    """ConfigError naming the first of the integer options ``names`` of ``cfg`` that is below 1."""
    prefix = f"{section}." if section else ""
    for name in names:
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"{prefix}{name} must be >= 1, got {getattr(cfg, name)}")


def check_dataset(folder: Path, what: str, split: str | None) -> None:
    """Folder exists, has a card and shards, the first record follows the schema and the split is not empty."""
    if not folder.is_dir():
        raise ConfigError(
            f"{what}: dataset folder {folder} does not exist; write it with `seagull synth --out {folder}`"
        )
    try:
        card = read_card(folder)
        shards = shard_paths(folder)
        if not shards:
            raise SchemaError(f"{folder} has no shards/*.jsonl")
        first = next(iter(read_shard(shards[0])), None)
        if first is None:
            raise SchemaError(f"{shards[0]} is empty")
        rec = SampleRecord.from_dict(first)
        if not rec.rois or rec.rois[0].quality_level is None:
            raise SchemaError(f"record {rec.id!r} has no labelled ROI (quality_level missing)")
    except SchemaError as e:
        raise ConfigError(f"{what}: {folder} is not a usable dataset: {e}") from e
    if split is not None:
        per_split = card.get("counts", {}).get("per_split")
        if isinstance(per_split, dict) and not per_split.get(split):
            raise ConfigError(
                f"{what}: {folder} has no records in split {split!r} (it has {sorted(per_split)}); "
                f"set the split to one of those or to null for every record"
            )


# ------------------------------------------------------------------ building a dataclass from a mapping

_KINDS = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string", Path: "a path"}
_PLURAL = {int: "integers", float: "finite numbers", bool: "booleans", str: "strings", Path: "paths"}


def _expected(hint: Any) -> str:
    """``int | None`` -> "an integer or null", ``list[str]`` -> "a list of strings", ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _expected(a) for a in args)
    if origin is list:
        return f"a list of {_PLURAL[args[0]]}"
    if origin is tuple:
        return f"a list of {len(args)} {_PLURAL[args[0]]}"
    if origin is dict:
        return "a mapping" if args[1] is Any else f"a mapping of {_PLURAL[args[1]]}"
    return _KINDS.get(hint, "any value")


class _WrongType(TypeError):
    """``value`` (at ``key`` below the option, e.g. ``.quality``) is not of type ``hint``."""

    def __init__(self, value: Any, hint: Any, key: str = "") -> None:
        super().__init__(value, hint, key)
        self.value, self.hint, self.key = value, hint, key


def _convert(value: Any, hint: Any) -> Any:
    """``value`` as the field type ``hint`` (ints and numeric strings become floats); _WrongType if not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is not type(None):
                with contextlib.suppress(_WrongType):
                    return _convert(value, a)
    elif origin is list and isinstance(value, (str, Path, list, tuple)):
        items = [value] if isinstance(value, (str, Path)) else value  # one path or name: a list of one
        return _each({f"[{i}]": v for i, v in enumerate(items)}, args[0])
    elif origin is tuple and isinstance(value, (list, tuple)) and len(value) == len(args):
        return tuple(_each({f"[{i}]": v for i, v in enumerate(value)}, args[0]))
    elif origin is dict and isinstance(value, dict):
        return dict(zip(value, _each({f".{k}": v for k, v in value.items()}, args[1]), strict=True))
    elif hint is float and isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
        with contextlib.suppress(ValueError):
            if math.isfinite(float(value)):  # nan and inf are never a setting
                return float(value)
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(float(value)):
            return float(value)
    elif hint is Path and isinstance(value, (str, Path)):
        return Path(value)
    elif hint is Any or type(value) is hint:
        return value
    raise _WrongType(value, hint)


def _each(items: dict[str, Any], hint: Any) -> list[Any]:
    """The values of ``{key suffix: value}`` converted to ``hint``; a _WrongType names the entry."""
    out = []
    for key, v in items.items():
        try:
            out.append(_convert(v, hint))
        except _WrongType as e:
            raise _WrongType(e.value, e.hint, f"{key}{e.key}") from None
    return out


def _sections(cls: type) -> dict[str, type]:
    """``{field name: dataclass}`` of the sections of config class ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def build(cls: type, raw: Any, section: str = "") -> Any:
    """The dataclass ``cls`` (its sections included) from the mapping of config ``section`` (empty: the
    top level); ConfigError naming an unknown option or a value of the wrong type."""
    where, prefix = (section, f"{section}.") if section else ("the top level", "")
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(raw) - names
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} in {where}; known: {sorted(names)}")
    hints, sections = typing.get_type_hints(cls), _sections(cls)
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        if k in sections:
            kwargs[k] = build(sections[k], v, f"{prefix}{k}")
            continue
        try:
            kwargs[k] = _convert(v, hints[k])
        except _WrongType as e:
            key = f"{prefix}{k}{e.key}"
            raise ConfigError(
                f"{key}={e.value!r} is not valid: expected {_expected(e.hint)}; "
                f"fix {key} in the config file or the key=value override"
            ) from None
    return cls(**kwargs)


# ------------------------------------------------------------------ paths


def _path_names(cls: type, name: str) -> Callable[[str], bool] | None:
    """For a path option ``name`` of ``cls``: which of its strings are names; None: not a path option."""
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        return None
    if _PATH in f.metadata:
        return f.metadata[_PATH]
    return _no_names if _mentions_path(typing.get_type_hints(cls)[name]) else None


def _mentions_path(hint: Any) -> bool:
    """``Path``, ``Path | None``, ``list[Path]``, ..."""
    return hint is Path or any(_mentions_path(a) for a in typing.get_args(hint))


def _join(folder: Path, value: Any, names: Callable[[str], bool]) -> Any:
    """``value`` (a path or a list of paths) with relative paths made relative to ``folder``; names,
    empty strings and values that are not strings are left for the type check."""
    if isinstance(value, list):
        return [_join(folder, v, names) for v in value]
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value or names(value) or Path(value).is_absolute():
        return value
    return os.path.normpath(folder / value)


def resolve_paths(cls: type, raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``raw`` (a mapping for ``cls``) with every relative path made relative to ``folder``."""
    sections = _sections(cls)
    out = dict(raw)
    for k, v in raw.items():
        if k in sections and isinstance(v, dict):
            out[k] = resolve_paths(sections[k], v, folder)
        elif (names := _path_names(cls, k)) is not None and v is not None:
            out[k] = _join(folder, v, names)
    return out


# ------------------------------------------------------------------ reading files


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; ConfigError naming the file and the fix."""
    if path.is_dir():
        raise ConfigError(
            f"training config {path} is a folder; pass a YAML file (see {EXAMPLES} for examples)"
        )
    if not path.is_file():
        raise ConfigError(f"training config {path} does not exist; see {EXAMPLES} for examples")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"training config {path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"training config {path} must be a YAML mapping")
    return raw


def merge(cls: type, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: sections merged key by key, every other option replaced."""
    sections = _sections(cls)
    out = dict(base)
    for k, v in over.items():
        if k in sections and isinstance(v, dict) and isinstance(base.get(k), dict):
            out[k] = merge(sections[k], base[k], v)
        else:
            out[k] = v
    return out


def read_file(cls: type, path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of config file ``path`` for ``cls``, its ``extends`` chain merged in, every relative
    path in each file made relative to that file."""
    here = Path(os.path.abspath(path))
    if here in chain:
        loop = " -> ".join(str(p) for p in (*chain, here))
        raise ConfigError(f"training config {chain[0]} extends itself through {loop}; remove one extends")
    raw = read_yaml(Path(path))
    raw.pop("source", None)  # written by older versions of dump
    base_name = raw.pop(EXTENDS, None)
    raw = resolve_paths(cls, raw, here.parent)
    if base_name is None:
        return raw
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: extends must be the path of another config file, got {base_name!r}")
    base = Path(os.path.normpath(here.parent / base_name))
    if not base.is_file():
        raise ConfigError(
            f"{path}: extends: {base_name} does not exist (looked for {base}: relative to the file's folder)"
        )
    return merge(cls, read_file(cls, base, (*chain, here)), raw)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value or section.key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({e.problem}); quote it") from e


def _cwd_path(cls: type, keys: list[str], value: Any) -> Any:
    """An override's value, made relative to the working directory when ``keys`` name a path option."""
    for k in keys[:-1]:
        section = _sections(cls).get(k)
        if section is None:
            return value
        cls = section
    names = _path_names(cls, keys[-1])
    return value if names is None else _join(Path.cwd(), value, names)


def apply_overrides(cls: type, raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``raw`` with the ``section.key=value`` strings applied (relative paths: to the working directory)."""
    for o in overrides:
        keys, value = parse_override(o)
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {o!r}: {k} is not a section")
        node[keys[-1]] = _cwd_path(cls, keys, value)
    return raw


def read_config(
    cls: type, path: str | Path, overrides: list[str] | None = None, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved mapping of config file ``path`` for ``cls``: ``extends`` merged, paths resolved,
    the ``key=value`` overrides then the non-None keyword ``fields`` (top-level options) applied."""
    raw = apply_overrides(cls, read_file(cls, Path(path)), list(overrides or []))
    raw.update({k: _cwd_path(cls, [k], v) for k, v in (fields or {}).items() if v is not None})
    return raw


def build_config(cls: type, raw: dict[str, Any], source: str | Path) -> Any:
    """The config ``cls`` from the mapping :func:`read_config` read from ``source``, not yet validated."""
    cfg = build(cls, raw)
    cfg.source = Path(source).resolve()
    return cfg
