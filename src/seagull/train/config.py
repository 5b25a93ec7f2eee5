"""Training configuration: a YAML file -> :class:`TrainConfig`, validated before any compute.

Reading (``extends``, paths relative to the file, ``key=value`` overrides, type checks) is shared with
stage 0 in :mod:`.config_base`. Every check that can fail on the user's input runs in
:func:`load_config` / :meth:`TrainConfig.validate`, each section's checks in its own ``validate``
(data folders, their schema, impossible combinations); checks that need the built model (LoRA target
names) run in :func:`check_against_model` right after the model is built, still before the first step.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError
from .config_base import (
    EXAMPLES,
    ConfigBase,
    build_config,
    check_dataset,
    model_field,
    path_field,
    read_config,
    require_at_least_one,
)

TASKS = ("quality", "importance", "distortion", "judgment")
LM_MODES = ("lora", "full", "frozen")
PRECISIONS = ("auto", "no", "bf16", "fp16")
CACHE_MODES = ("none", "memory", "disk")
CONVERSATION_MODES = ("regenerate", "stored")
SCHEDULERS = ("cosine", "linear", "constant")


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

    def validate(self, check_data: bool = True) -> None:
        """The options; with ``check_data`` also each folder (card, first record, split not empty)."""
        if self.conversations not in CONVERSATION_MODES:
            raise ConfigError(
                f"data.conversations must be one of {CONVERSATION_MODES}, got {self.conversations!r}"
            )
        unknown = set(self.task_mix) - set(TASKS)
        if unknown:
            raise ConfigError(f"data.task_mix has unknown task(s) {sorted(unknown)}; known: {TASKS}")
        ratios = [float(v) for v in self.task_mix.values()]
        if any(v < 0 for v in ratios) or sum(ratios) <= 0:
            raise ConfigError(
                f"data.task_mix needs non-negative ratios with a positive sum, got {self.task_mix}"
            )
        if self.convs_per_image < 1 or self.turns_per_conversation < 1:
            raise ConfigError("data.convs_per_image and data.turns_per_conversation must be >= 1")
        if not self.train:
            raise ConfigError(
                "data.train is empty: list at least one dataset folder written by `seagull synth`"
            )
        n = len(self.train)
        if self.train_repeat and (len(self.train_repeat) != n or min(self.train_repeat) < 1):
            raise ConfigError(
                f"data.train_repeat {self.train_repeat} needs one count >= 1 per data.train folder ({n})"
            )
        if self.train_ranked and (
            len(self.train_ranked) != n or not all(isinstance(r, bool) for r in self.train_ranked)
        ):
            raise ConfigError(
                f"data.train_ranked {self.train_ranked} needs one true/false per data.train folder ({n})"
            )
        if check_data:
            for folder in self.train:
                check_dataset(Path(folder), "data.train", self.train_split)
            for folder in self.val:
                check_dataset(Path(folder), "data.val", self.val_split)


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    merge: bool = True  # merge the adapters into the LM weights of the final folder

    def validate(self) -> None:
        """Checked when ``parts.lm`` is ``lora`` (the target names against the model: trainer.py)."""
        if self.r <= 0 or self.alpha <= 0:
            raise ConfigError(f"lora.r and lora.alpha must be positive, got r={self.r}, alpha={self.alpha}")
        if not self.targets:
            raise ConfigError("lora.targets is empty; name the LM's linear layers (e.g. q_proj, v_proj)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class PartsConfig:
    mfe: bool = True
    projector: bool = True
    lm: str = "lora"  # lora | full | frozen
    tower: bool = False  # the vision tower is frozen in SEAGULL; True is refused (see validate)
    full_finetune_max_params: int = 500_000_000  # "full fine-tuning for small LMs"

    def validate(self) -> None:
        if self.tower:
            raise ConfigError(
                "parts.tower: true is not supported: the tower stays frozen in stages 1 and 2 (SEAGULL); fine-tune "
                "it in stage 0 (a `stage: tower` config) and pass the result with `tower:`"
            )
        if self.lm not in LM_MODES:
            raise ConfigError(f"parts.lm must be one of {LM_MODES}, got {self.lm!r}")
        if not (self.mfe or self.projector or self.lm != "frozen"):
            raise ConfigError("nothing to train: parts.mfe, parts.projector are false and parts.lm is frozen")


@dataclass
class OptimConfig:
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    scheduler: str = "cosine"  # cosine | linear | constant
    max_grad_norm: float = 1.0

    def validate(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"optim.scheduler must be cosine, linear or constant, got {self.scheduler!r}")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0 or self.warmup_steps < 0:
            raise ConfigError(
                "optim.weight_decay and optim.warmup_steps must be >= 0 and optim.max_grad_norm positive, got "
                f"{self.weight_decay}, {self.warmup_steps} and {self.max_grad_norm}"
            )
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must both be in [0, 1), got {list(self.betas)}")


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

    def validate(self) -> None:
        if self.weight < 0 or self.warmup_steps < 0:
            raise ConfigError(f"aux.weight and aux.warmup_steps must be >= 0, got {self}")
        if self.rank_weight < 0:
            raise ConfigError(f"aux.rank_weight must be >= 0, got {self.rank_weight}")
        if self.answer_word_weight <= 0:
            raise ConfigError(f"aux.answer_word_weight must be positive, got {self.answer_word_weight}")
        if not 0 <= self.image_dropout < 1:
            raise ConfigError(f"aux.image_dropout must be in [0, 1), got {self.image_dropout}")
        if self.warmup_steps and not self.weight:
            raise ConfigError("aux.warmup_steps needs aux.weight > 0 (the warm-up trains the region heads)")


@dataclass
class TrainConfig(ConfigBase):
    # named config, JSON file, or a trained model folder (stage 2 starts from it)
    model: str = model_field("seagull-test")
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # A stage-0 tower (train/tower/: OUTPUT/final/tower.safetensors) replacing the model's tower weights;
    # the trained model stores it.
    tower: Path | None = None
    # tokenizer folder; None: the model folder's, or train the project BPE
    tokenizer: str | None = path_field(default=None)
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

    # What does not change the optimisation path (a resume may differ in it).
    DIGEST_IGNORES: ClassVar[tuple[str, ...]] = (
        "output_dir",
        "progress",
        "tensorboard",
        "save_every",
        "keep_checkpoints",
        "cache_dir",
        "val_every",
        "val_at_start",
        "log_every",
        "threads",
        "feature_cache",
        "data.val_max_rois",
        "data.val",
        "data.val_split",
    )

    def validate(self, check_data: bool = True) -> None:
        """Raise ConfigError naming the field and the fix; touches only small files (cards, first records).
        Each section checks itself; the options that span sections or the machine are checked here."""
        self.parts.validate()
        if self.parts.lm == "lora":
            self.lora.validate()
        self._validate_files()
        self._validate_compute()
        self.optim.validate()
        self.aux.validate()
        require_at_least_one(
            self, ("batch_images", "grad_accum", "save_every", "val_every", "log_every", "keep_checkpoints")
        )
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_steps is None and self.epochs <= 0:
            raise ConfigError(f"epochs must be positive when max_steps is not set, got {self.epochs}")
        self.data.validate(check_data)

    def _validate_files(self) -> None:
        """The stage-0 tower and the feature cache folder."""
        if self.tower is not None and not Path(self.tower).is_file():
            raise ConfigError(
                f"tower: {self.tower} does not exist; train it with a `stage: tower` config "
                f"({EXAMPLES}tower_stage0.yaml) or remove the option"
            )
        if self.feature_cache not in CACHE_MODES:
            raise ConfigError(f"feature_cache must be one of {CACHE_MODES}, got {self.feature_cache!r}")
        if self.feature_cache == "disk" and self.cache_dir is None:
            raise ConfigError("feature_cache: disk needs cache_dir (a folder for the cached tower features)")

    def _validate_compute(self) -> None:
        """Precision and DeepSpeed against this machine."""
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(f"mixed_precision must be one of {PRECISIONS}, got {self.mixed_precision!r}")
        if self.mixed_precision == "fp16" and not _cuda():
            raise ConfigError("mixed_precision: fp16 needs a CUDA GPU; use bf16 or no (auto picks) on CPU")
        if self.deepspeed is None:
            return
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
            raise ConfigError("deepspeed: ZeRO needs CUDA GPUs; remove the deepspeed option on CPU machines")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def load_config(
    path: str | Path, overrides: list[str] | None = None, check_data: bool = True, **fields: Any
) -> TrainConfig:
    """Read (``extends`` merged, paths in the file relative to it), override (``section.key=value``
    strings, then keyword ``fields``; their paths relative to the working directory) and validate a
    YAML config."""
    raw = read_config(TrainConfig, path, overrides, fields)
    from .tower.config import STAGE

    if raw.get("stage") == STAGE:
        raise ConfigError(
            f"training config {path} is a stage-0 config (stage: {STAGE}, in it or in a file it extends); "
            f"`seagull train` runs stage 0 for a file that says `stage: {STAGE}` itself "
            "(seagull.train.tower.config.load_tower_config reads it)"
        )
    cfg: TrainConfig = build_config(TrainConfig, raw, path)
    cfg.validate(check_data=check_data)
    return cfg
