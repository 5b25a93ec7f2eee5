"""Stage-0 configuration: a YAML file with ``stage: tower`` -> :class:`TowerConfig`, validated first."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ConfigError
from ..config_base import (
    ConfigBase,
    build_config,
    check_dataset,
    model_field,
    read_config,
    require_at_least_one,
)

STAGE = "tower"


@dataclass
class TowerLossWeights:
    quality: float = 1.0  # smooth-L1 on the full-reference quality of each region
    types: float = 1.0  # binary cross-entropy on which distortion types are present
    severity: float = 1.0  # smooth-L1 on each type's damage
    rank: float = 1.0  # within-photo pairwise ranking of the quality output (train/ranking.py)

    def validate(self) -> None:
        weights = dataclasses.asdict(self)
        if min(weights.values()) < 0 or not sum(weights.values()):
            raise ConfigError(f"loss weights must be >= 0 with a positive sum, got {weights}")


@dataclass
class TowerConfig(ConfigBase):
    stage: str = STAGE
    # The model config (named, JSON file or model folder) whose vision tower stage 0 starts from; its
    # tower must have package weights (EfficientNet-Lite0 for seagull-tiny).
    model: str = model_field("seagull-tiny")
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

    # What does not change the optimisation path (a resume may differ in it).
    DIGEST_IGNORES: ClassVar[tuple[str, ...]] = (
        "output_dir",
        "progress",
        "save_every",
        "keep_checkpoints",
        "val_every",
        "log_every",
        "threads",
        "val",
        "val_split",
        "val_photos",
    )

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
        self.loss.validate()
        if not self.train:
            raise ConfigError("train is empty: list at least one dataset folder written by `seagull synth`")
        if check_data:
            for folder in self.train:
                check_dataset(Path(folder), "train", self.train_split)
            for folder in self.val:
                check_dataset(Path(folder), "val", self.val_split)


def is_tower_config(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("stage") == STAGE


def load_tower_config(
    path: str | Path, overrides: list[str] | None = None, check_data: bool = True, **fields: Any
) -> TowerConfig:
    """Read (``extends`` merged, paths in the file relative to it), override (paths relative to the
    working directory) and validate a stage-0 YAML config."""
    cfg: TowerConfig = build_config(TowerConfig, read_config(TowerConfig, path, overrides, fields), path)
    cfg.validate(check_data=check_data)
    return cfg
