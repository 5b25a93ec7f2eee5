"""Stage-0 configuration: a YAML file with ``stage: tower`` -> :class:`TowerConfig`, validated first."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...errors import ConfigError
from ..config import _build, check_dataset, read_raw_config, require_at_least_one

STAGE = "tower"


@dataclass
class TowerLossWeights:
    quality: float = 1.0  # smooth-L1 on the full-reference quality of each region
    types: float = 1.0  # binary cross-entropy on which distortion types are present
    severity: float = 1.0  # smooth-L1 on each type's damage
    rank: float = 1.0  # within-photo pairwise ranking of the quality output (train/ranking.py)


@dataclass
class TowerConfig:
    stage: str = STAGE
    # The model config (named, JSON file or model folder) whose vision tower stage 0 starts from; its
    # tower must have package weights (EfficientNet-Lite0 for seagull-tiny).
    model: str = "seagull-tiny"
    output_dir: Path = Path("runs/tower")
    train: list[Path] = field(default_factory=list)  # dataset folders written by `seagull synth`
    val: list[Path] = field(default_factory=list)  # empty: the val split of the train folders
    train_split: str | None = "train"
    val_split: str | None = "val"
    val_photos: int = 32  # photos (all their records, one fixed window each) scored at validation
    seed: int = 0
    max_steps: int = 1000
    crop: int = 256
    groups: int = 2  # photos per step
    variants: int = 2  # records of each photo per step (same window)
    max_rois: int = 8  # regions per crop
    lr: float = 1.0e-4  # tower
    head_lr: float = 1.0e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    max_grad_norm: float = 1.0
    loss: TowerLossWeights = field(default_factory=TowerLossWeights)
    threads: int | None = None
    save_every: int = 100
    keep_checkpoints: int = 2
    val_every: int = 200
    log_every: int = 10
    progress: bool = True
    source: Path | None = None

    def validate(self, check_data: bool = True) -> None:
        if self.stage != STAGE:
            raise ConfigError(f"stage must be {STAGE!r} for a tower config, got {self.stage!r}")
        from ...model.config import get_config

        vision = get_config(self.model).vision
        if vision.get("weights") != "package":
            raise ConfigError(
                f"model {self.model!r}: its tower ({vision.get('kind')}) has no package weights to start "
                "from; use seagull-tiny (EfficientNet-Lite0)"
            )
        require_at_least_one(
            self,
            (
                "max_steps",
                "crop",
                "groups",
                "variants",
                "max_rois",
                "save_every",
                "val_every",
                "log_every",
                "keep_checkpoints",
                "val_photos",
            ),
        )
        if self.crop < 32:
            raise ConfigError(f"crop must be at least 32 pixels, got {self.crop}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.lr <= 0 or self.head_lr <= 0:
            raise ConfigError(f"lr and head_lr must be positive, got {self.lr}, {self.head_lr}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise ConfigError(
                f"weight_decay must be >= 0 and max_grad_norm positive, got {self.weight_decay}, {self.max_grad_norm}"
            )
        weights = dataclasses.asdict(self.loss)
        if min(weights.values()) < 0 or not sum(weights.values()):
            raise ConfigError(f"loss weights must be >= 0 with a positive sum, got {weights}")
        if not self.train:
            raise ConfigError("train is empty: list at least one dataset folder written by `seagull synth`")
        if check_data:
            for folder in self.train:
                check_dataset(Path(folder), "train", self.train_split)
            for folder in self.val:
                check_dataset(Path(folder), "val", self.val_split)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d, default=str))

    def dump(self, path: Path) -> None:
        d = self.to_dict()
        d.pop("source", None)
        Path(path).write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")

    def fingerprint(self) -> str:
        """What changes the optimisation path (a resume must match it)."""
        d = self.to_dict()
        for k in (
            "output_dir",
            "source",
            "progress",
            "save_every",
            "keep_checkpoints",
            "val_every",
            "log_every",
            "threads",
            "val",
            "val_split",
            "val_photos",
        ):
            d.pop(k, None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def is_tower_config(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("stage") == STAGE


def tower_config_from_dict(raw: dict[str, Any], source: Path | None = None) -> TowerConfig:
    raw = dict(raw)
    loss = _build(TowerLossWeights, raw.pop("loss", None), "loss")
    raw.pop("source", None)
    cfg: TowerConfig = _build(TowerConfig, raw)
    cfg.loss = loss
    cfg.source = source
    base = source.parent if source else Path(".")

    def rel(p: Any) -> Path:
        p = Path(str(p))
        return p if p.is_absolute() or source is None else base / p

    cfg.train = [rel(p) for p in cfg.train]
    cfg.val = [rel(p) for p in cfg.val]
    cfg.output_dir = Path(cfg.output_dir)
    return cfg


def load_tower_config(
    path: str | Path, overrides: list[str] | None = None, check_data: bool = True, **fields: Any
) -> TowerConfig:
    cfg = tower_config_from_dict(read_raw_config(path, overrides, fields), Path(path).resolve())
    cfg.validate(check_data=check_data)
    return cfg
