"""Training configuration: a YAML file -> :class:`TrainConfig`, validated before any compute.

Every check that can fail on the user's input runs in :func:`load_config` / :meth:`TrainConfig.validate`
(data folders, their schema, impossible combinations); checks that need the built model (LoRA target
names) run in :func:`check_against_model` right after the model is built, still before the first step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, SchemaError
from ..schema import SampleRecord, read_card, read_shard, shard_paths

TASKS = ("quality", "importance", "distortion", "judgment")
LM_MODES = ("lora", "full", "frozen")
PRECISIONS = ("auto", "no", "bf16", "fp16")
CACHE_MODES = ("none", "memory", "disk")
CONVERSATION_MODES = ("regenerate", "stored")


@dataclass
class DataConfig:
    train: list[Path] = field(
        default_factory=list
    )  # dataset folders written by `seagull synth` (same schema)
    val: list[Path] = field(default_factory=list)  # empty: validate on `val_split` of the training folders
    train_split: str | None = "train"  # None = every record
    val_split: str | None = "val"
    conversations: str = "regenerate"  # regenerate turns from labels with the task mix, or use stored ones
    task_mix: dict[str, float] = field(
        default_factory=lambda: {"quality": 1.0, "importance": 1.0, "distortion": 1.0, "judgment": 1.0}
    )
    convs_per_image: int = 4  # conversations drawn per image per step (they share one image encoding)
    turns_per_conversation: int = 1
    max_length: int = 512
    val_max_rois: int = 64
    image_limit: int | None = None  # use only the first N training images (smoke runs)
    # times each ``train`` folder's images are listed per epoch (empty: once each); mixes a small
    # authentic folder into a large synthetic one (stage 2)
    train_repeat: list[int] = field(default_factory=list)
    # whether each ``train`` folder's ROI pairs take part in the within-photo ranking loss (empty: all);
    # an unranked folder's images still train every answer (measured on CUHK: docs/default_model.md, v3n)
    train_ranked: list[bool] = field(default_factory=list)


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    merge: bool = True  # merge the adapters into the LM weights of the final folder


@dataclass
class PartsConfig:
    mfe: bool = True
    projector: bool = True
    lm: str = "lora"  # lora | full | frozen
    tower: bool = False  # the vision tower is frozen in SEAGULL; True is refused (see validate)
    full_finetune_max_params: int = 500_000_000  # "full fine-tuning for small LMs"


@dataclass
class OptimConfig:
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    scheduler: str = "cosine"  # cosine | linear | constant
    max_grad_norm: float = 1.0


@dataclass
class AuxConfig:
    """Helps for reading the region tokens: auxiliary region heads (train/region_heads.py), off while
    ``weight`` is 0, and image-token dropout."""

    weight: float = 0.0  # loss = LM loss + weight x region-head loss
    warmup_steps: int = 0  # the first steps train the heads and the MFE only (no LM pass)
    image_dropout: float = 0.0  # share of sequences whose image tokens are zeroed (train/step.py)
    answer_word_weight: float = 1.0  # LM loss weight of level/severity/type/Yes/No tokens (train/step.py)
    # Within-photo ranking loss weight (train/ranking.py) on the heads' and the LM's quality scores;
    # > 0 also puts every labelled ROI of an image into its training item, so photos give pairs.
    rank_weight: float = 0.0


@dataclass
class TrainConfig:
    model: str = "seagull-test"  # named config, JSON file, or a trained model folder (stage 2 starts from it)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # A stage-0 tower (train/tower/: OUTPUT/final/tower.safetensors) replacing the model's tower weights;
    # the trained model stores it. Relative to the working directory, like ``model``.
    tower: Path | None = None
    tokenizer: str | None = None  # tokenizer folder; None: the model folder's, or train the project BPE
    tokenizer_vocab: int = 2048
    output_dir: Path = Path("runs/seagull")
    seed: int = 0
    max_steps: int | None = None
    epochs: float = 1.0  # used when max_steps is None
    batch_images: int = 2  # images per process per step
    grad_accum: int = 1
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    feature_cache: str = "memory"  # none | memory | disk (frozen-tower features, computed once per image)
    cache_dir: Path | None = None
    threads: int | None = None  # torch intra-op threads per process
    save_every: int = 100
    keep_checkpoints: int = 2
    val_every: int = 100
    val_at_start: bool = True
    log_every: int = 10
    tensorboard: bool = True
    progress: bool = True
    deepspeed: Path | None = None  # a DeepSpeed JSON (deepspeed/zero2.json, zero3.json); GPUs + accelerate
    data: DataConfig = field(default_factory=DataConfig)
    parts: PartsConfig = field(default_factory=PartsConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    optim: OptimConfig = field(default_factory=OptimConfig)
    aux: AuxConfig = field(default_factory=AuxConfig)
    source: Path | None = None  # the YAML file this came from

    # ------------------------------------------------------------------ validation

    def validate(self, check_data: bool = True) -> None:
        """Raise ConfigError naming the field and the fix; touches only small files (cards, first records)."""
        if self.parts.tower:
            raise ConfigError(
                "parts.tower: true is not supported: the tower stays frozen in stages 1 and 2 (SEAGULL); fine-tune "
                "it in stage 0 (a `stage: tower` config) and pass the result with `tower:`"
            )
        if self.parts.lm not in LM_MODES:
            raise ConfigError(f"parts.lm must be one of {LM_MODES}, got {self.parts.lm!r}")
        if not (self.parts.mfe or self.parts.projector or self.parts.lm != "frozen"):
            raise ConfigError("nothing to train: parts.mfe, parts.projector are false and parts.lm is frozen")
        if self.parts.lm == "lora":
            if self.lora.r <= 0 or self.lora.alpha <= 0:
                raise ConfigError(
                    f"lora.r and lora.alpha must be positive, got r={self.lora.r}, alpha={self.lora.alpha}"
                )
            if not self.lora.targets:
                raise ConfigError("lora.targets is empty; name the LM's linear layers (e.g. q_proj, v_proj)")
            if not 0 <= self.lora.dropout < 1:
                raise ConfigError(f"lora.dropout must be in [0, 1), got {self.lora.dropout}")
        if self.tower is not None and not Path(self.tower).is_file():
            raise ConfigError(
                f"tower: {self.tower} does not exist; train it with a `stage: tower` config "
                "(src/seagull/train/configs/tower_stage0.yaml) or remove the option"
            )
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(f"mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}")
        if self.feature_cache not in CACHE_MODES:
            raise ConfigError(f"feature_cache must be one of {CACHE_MODES}, got {self.feature_cache!r}")
        if self.feature_cache == "disk" and self.cache_dir is None:
            raise ConfigError("feature_cache: disk needs cache_dir (a folder for the cached tower features)")
        if self.mixed_precision == "fp16" and not _cuda():
            raise ConfigError("mixed_precision: fp16 needs a CUDA GPU; use bf16 or no (auto picks) on CPU")
        if self.deepspeed is not None:
            if not Path(self.deepspeed).is_file():
                raise ConfigError(
                    f"deepspeed config {self.deepspeed} does not exist; point it at deepspeed/zero2.json"
                )
            for pkg in ("accelerate", "deepspeed"):
                if importlib.util.find_spec(pkg) is None:
                    raise ConfigError(
                        f"deepspeed: set but the {pkg!r} package is not installed; DeepSpeed runs through "
                        f"accelerate here: pip install {pkg} (GPU machines), or remove the deepspeed option"
                    )
            if not _cuda():
                raise ConfigError(
                    "deepspeed: ZeRO needs CUDA GPUs; remove the deepspeed option on CPU machines"
                )
        if self.optim.scheduler not in ("cosine", "linear", "constant"):
            raise ConfigError(
                f"optim.scheduler must be cosine, linear or constant, got {self.optim.scheduler!r}"
            )
        if self.aux.weight < 0 or self.aux.warmup_steps < 0:
            raise ConfigError(f"aux.weight and aux.warmup_steps must be >= 0, got {self.aux}")
        if self.aux.rank_weight < 0:
            raise ConfigError(f"aux.rank_weight must be >= 0, got {self.aux.rank_weight}")
        if self.aux.answer_word_weight <= 0:
            raise ConfigError(f"aux.answer_word_weight must be positive, got {self.aux.answer_word_weight}")
        if not 0 <= self.aux.image_dropout < 1:
            raise ConfigError(f"aux.image_dropout must be in [0, 1), got {self.aux.image_dropout}")
        if self.aux.warmup_steps and not self.aux.weight:
            raise ConfigError("aux.warmup_steps needs aux.weight > 0 (the warm-up trains the region heads)")
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.optim.lr}")
        if self.optim.weight_decay < 0 or self.optim.max_grad_norm <= 0 or self.optim.warmup_steps < 0:
            raise ConfigError(
                "optim.weight_decay and optim.warmup_steps must be >= 0 and optim.max_grad_norm positive, got "
                f"{self.optim.weight_decay}, {self.optim.warmup_steps} and {self.optim.max_grad_norm}"
            )
        if not all(0 <= b < 1 for b in self.optim.betas):
            raise ConfigError(f"optim.betas must both be in [0, 1), got {list(self.optim.betas)}")
        require_at_least_one(
            self, ("batch_images", "grad_accum", "save_every", "val_every", "log_every", "keep_checkpoints")
        )
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_steps is None and self.epochs <= 0:
            raise ConfigError(f"epochs must be positive when max_steps is not set, got {self.epochs}")
        d = self.data
        if d.conversations not in CONVERSATION_MODES:
            raise ConfigError(
                f"data.conversations must be one of {CONVERSATION_MODES}, got {d.conversations!r}"
            )
        unknown = set(d.task_mix) - set(TASKS)
        if unknown:
            raise ConfigError(f"data.task_mix has unknown task(s) {sorted(unknown)}; known: {TASKS}")
        if any(float(v) < 0 for v in d.task_mix.values()) or sum(float(v) for v in d.task_mix.values()) <= 0:
            raise ConfigError(
                f"data.task_mix needs non-negative ratios with a positive sum, got {d.task_mix}"
            )
        if d.convs_per_image < 1 or d.turns_per_conversation < 1:
            raise ConfigError("data.convs_per_image and data.turns_per_conversation must be >= 1")
        if not d.train:
            raise ConfigError(
                "data.train is empty: list at least one dataset folder written by `seagull synth`"
            )
        if d.train_repeat and (len(d.train_repeat) != len(d.train) or min(d.train_repeat) < 1):
            raise ConfigError(
                f"data.train_repeat {d.train_repeat} needs one count >= 1 per data.train folder ({len(d.train)})"
            )
        if d.train_ranked and (
            len(d.train_ranked) != len(d.train) or not all(isinstance(r, bool) for r in d.train_ranked)
        ):
            raise ConfigError(
                f"data.train_ranked {d.train_ranked} needs one true/false per data.train folder ({len(d.train)})"
            )
        if check_data:
            for folder in d.train:
                check_dataset(Path(folder), "data.train", d.train_split)
            for folder in d.val or []:
                check_dataset(Path(folder), "data.val", d.val_split)

    def to_dict(self) -> dict[str, Any]:
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


def require_at_least_one(cfg: Any, names: tuple[str, ...]) -> None:
    """ConfigError naming the first of the integer options ``names`` of ``cfg`` that is below 1."""
    for name in names:
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(cfg, name)}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


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
    elif hint is Path and isinstance(value, (str, Path)) or hint is Any or type(value) is hint:
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


def _build(cls: type, raw: Any, section: str = "") -> Any:
    """The dataclass ``cls`` from the mapping of config ``section`` (empty: the top level)."""
    where, prefix = (section, f"{section}.") if section else ("the top level", "")
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(names)
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} in {where}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            kwargs[k] = _convert(v, hints[k])
        except _WrongType as e:
            key = f"{prefix}{k}{e.key}"
            raise ConfigError(
                f"{key}={e.value!r} is not valid: expected {_expected(e.hint)}; "
                f"fix {key} in the config file or the key=value override"
            ) from None
    return cls(**kwargs)


def config_from_dict(raw: dict[str, Any], source: Path | None = None) -> TrainConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"training config {source} must be a YAML mapping")
    raw = dict(raw)
    base = source.parent if source else Path(".")
    sub = {
        "data": _build(DataConfig, raw.pop("data", None), "data"),
        "parts": _build(PartsConfig, raw.pop("parts", None), "parts"),
        "lora": _build(LoraSettings, raw.pop("lora", None), "lora"),
        "optim": _build(OptimConfig, raw.pop("optim", None), "optim"),
        "aux": _build(AuxConfig, raw.pop("aux", None), "aux"),
    }
    raw.pop("source", None)
    cfg: TrainConfig = _build(TrainConfig, raw)
    for k, v in sub.items():
        setattr(cfg, k, v)
    cfg.source = source
    d = cfg.data

    # Relative data paths are relative to the config file (so configs travel with their data).
    def rel(p: Any) -> Path:
        p = Path(str(p))
        return p if p.is_absolute() or source is None else (base / p)

    d.train = [rel(p) for p in ([d.train] if isinstance(d.train, (str, Path)) else (d.train or []))]
    d.val = [rel(p) for p in ([d.val] if isinstance(d.val, (str, Path)) else (d.val or []))]
    cfg.output_dir = Path(cfg.output_dir)
    cfg.cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else None
    cfg.deepspeed = rel(cfg.deepspeed) if cfg.deepspeed else None
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value or section.key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip().split("."), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({e.problem}); quote it") from e


# Paths given on the command line are relative to the working directory (those in the file: to the file).
PATH_KEYS = {
    ("data", "train"),
    ("data", "val"),
    ("output_dir",),
    ("cache_dir",),
    ("deepspeed",),
    ("model",),
    ("tower",),
    ("train",),  # stage 0 (tower/config.py)
    ("val",),
}


def _absolute(value: Any) -> Any:
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if isinstance(value, str) and value and not Path(value).is_absolute() and Path(value).exists():
        return str(Path(value).resolve())
    return value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for o in overrides:
        keys, value = parse_override(o)
        if tuple(keys) in PATH_KEYS:
            value = _absolute(value)
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {o!r}: {k} is not a section")
        node[keys[-1]] = value
    return raw


def load_config(
    path: str | Path, overrides: list[str] | None = None, check_data: bool = True, **fields: Any
) -> TrainConfig:
    """Read, override (``section.key=value`` strings, then keyword ``fields``) and validate a YAML config."""
    cfg = config_from_dict(read_raw_config(path, overrides, fields), Path(path).resolve())
    cfg.validate(check_data=check_data)
    return cfg


def read_raw_config(path: str | Path, overrides: list[str] | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A config file's YAML mapping with the ``key=value`` overrides, then the non-None ``fields``, applied."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(
            f"training config {p} is a folder; pass a YAML file (see src/seagull/train/configs/ for examples)"
        )
    if not p.is_file():
        raise ConfigError(f"training config {p} does not exist; see src/seagull/train/configs/ for examples")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"training config {p} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"training config {p} must be a YAML mapping")
    raw = apply_overrides(raw, list(overrides or []))
    raw.update({k: v for k, v in fields.items() if v is not None})
    return raw


def config_hash(cfg: TrainConfig) -> str:
    """Fingerprint of everything that changes the optimisation path (a resume must match it)."""
    import hashlib

    d = cfg.to_dict()
    for k in (
        "output_dir",
        "source",
        "progress",
        "tensorboard",
        "save_every",
        "keep_checkpoints",
        "cache_dir",
        "val_every",
        "val_at_start",
        "log_every",
        "threads",
    ):
        d.pop(k, None)
    d.pop("feature_cache", None)
    d["data"].pop("val_max_rois", None)
    d["data"].pop("val", None)
    d["data"].pop("val_split", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
