"""The stage-0 loop: resumable (checkpoints of train/checkpoint.py), validated, one process.

``OUTPUT/final/`` holds ``tower.safetensors`` (the trunk under timm names: ``tower: PATH`` in a
stage-1/2 config, or ``vision.weights: file``), ``heads.safetensors`` and ``train_config.yaml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ...errors import ConfigError
from ...labels import DISTORTION_TYPES
from ...metrics.stats import sample_average_prf, srcc, type_set
from ...model.config import get_config
from ...model.vision import build_vision_tower
from ..checkpoint import (
    checkpoint_dirs,
    commit_checkpoint,
    find_resume_checkpoint,
    load_checkpoint,
    write_checkpoint,
)
from ..ranking import RANK_MARGIN, pairwise_rank_loss
from ..tracking import MetricsLog
from ..trainer import lr_factor
from .config import TowerConfig
from .data import CropBatch, CropSampler, load_photos
from .heads import TowerWithHeads

FINAL = "final"
TOWER_FILE = "tower.safetensors"
HEADS_FILE = "heads.safetensors"
FIELDS = (
    "step",
    "split",
    "loss",
    "quality_loss",
    "types_loss",
    "severity_loss",
    "rank_loss",
    "lr",
    "crops_per_s",
    "elapsed_s",
    "quality_srcc",
    "type_f1",
    "pair_acc",
    "n_rois",
)


@dataclass
class TowerResult:
    steps: int
    seconds: float
    final_dir: Path
    last_val: dict[str, float]


def build_module(cfg: TowerConfig) -> TowerWithHeads:
    """The start point: the model config's tower with its package weights, made trainable, and new heads."""
    vision = {**get_config(cfg.model).vision, "frozen": False}
    torch.manual_seed(cfg.seed)
    return TowerWithHeads(build_vision_tower(vision))


def losses(module: TowerWithHeads, batch: CropBatch, cfg: TowerConfig) -> dict[str, torch.Tensor]:
    quality, type_logits, severity = module(batch.pixels, batch.masks)
    out = {
        "quality_loss": F.smooth_l1_loss(quality, batch.quality, beta=0.05),
        "types_loss": F.binary_cross_entropy_with_logits(type_logits, (batch.severity > 0).float()),
        "severity_loss": F.smooth_l1_loss(severity, batch.severity, beta=0.05),
    }
    rank = pairwise_rank_loss(quality, batch.quality, batch.group)
    out["rank_loss"] = rank if rank is not None else quality.sum() * 0.0
    w = cfg.loss
    out["loss"] = (
        w.quality * out["quality_loss"]
        + w.types * out["types_loss"]
        + w.severity * out["severity_loss"]
        + w.rank * out["rank_loss"]
    )
    return out


@torch.no_grad()
def validate(module: TowerWithHeads, sampler: CropSampler) -> dict[str, float]:
    """Quality SRCC, type F1 (a type is named when its logit > 0) and within-photo pair accuracy."""
    module.eval()
    q_pred, q_true, labels, named, right, pairs = [], [], [], [], 0, 0
    for i in range(len(sampler.photos)):
        batch = sampler.fixed(i)
        if batch is None:
            continue
        quality, type_logits, _ = module(batch.pixels, batch.masks)
        q_pred += quality.tolist()
        q_true += batch.quality.tolist()
        for sev, logit in zip(batch.severity.tolist(), type_logits.tolist(), strict=True):
            labels.append(type_set(t for t, s in zip(DISTORTION_TYPES, sev, strict=True) if s > 0))
            named.append(type_set(t for t, z in zip(DISTORTION_TYPES, logit, strict=True) if z > 0))
        r, n = region_quality_pairs(quality.numpy(), batch.quality.numpy())
        right, pairs = right + r, pairs + n
    module.train()
    return {
        "quality_srcc": srcc(q_pred, q_true),
        "type_f1": sample_average_prf(labels, named).f1,
        "pair_acc": right / pairs if pairs else float("nan"),
        "n_rois": float(len(q_true)),
    }


def make_optimizer(module: TowerWithHeads, cfg: TowerConfig) -> tuple[torch.optim.Optimizer, Any]:
    heads = [p for n, p in module.named_parameters() if not n.startswith("tower.")]
    optimizer = torch.optim.AdamW(
        [
            {"params": list(module.tower.parameters()), "lr": cfg.lr},
            {"params": heads, "lr": cfg.head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )
    factor = lr_factor(cfg.warmup_steps, cfg.max_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def save_final(module: TowerWithHeads, cfg: TowerConfig, out: Path) -> Path:
    final = out / FINAL
    final.mkdir(parents=True, exist_ok=True)
    trunk = {k: v.detach().contiguous() for k, v in module.tower.trunk.state_dict().items()}
    save_file(trunk, str(final / TOWER_FILE), metadata={"format": "pt", "model": cfg.model})
    heads = {k: v.detach().contiguous() for k, v in module.state_dict().items() if not k.startswith("tower.")}
    save_file(heads, str(final / HEADS_FILE))
    cfg.dump(final / "train_config.yaml")
    return final


def train_tower(cfg: TowerConfig, resume: bool = False) -> TowerResult:
    out = Path(cfg.output_dir)
    fingerprint = cfg.digest()
    resume_from = find_resume_checkpoint(out, fingerprint, 1) if resume else None
    if not resume and checkpoint_dirs(out):
        raise ConfigError(
            f"{out} already holds checkpoints; pass --resume to continue or choose another --output"
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    module = build_module(cfg)
    module.train()
    keys = ("crop", "groups", "variants", "max_rois", "seed")
    sampler = CropSampler(load_photos(cfg.train, cfg.train_split), **{k: getattr(cfg, k) for k in keys})
    val_photos = load_photos(cfg.val or cfg.train, cfg.val_split)[: cfg.val_photos]
    val_sampler = CropSampler(val_photos, **{k: getattr(cfg, k) for k in keys})
    optimizer, scheduler = make_optimizer(module, cfg)
    start = 0
    if resume_from is not None:
        folder, state = resume_from
        load_checkpoint(folder, state, module, optimizer, scheduler)
        start = int(state["step"])
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out, tensorboard=False, resume_step=start, fields=FIELDS)
    last_val: dict[str, float] = {}
    t0 = time.perf_counter()
    steps = range(start, cfg.max_steps)
    if cfg.progress:
        from tqdm import tqdm

        steps = tqdm(steps, initial=start, total=cfg.max_steps, desc="tower", mininterval=30)
    for step in steps:
        if step == start and start == 0:
            last_val = validate(module, val_sampler)
            log.log(0, "val", **last_val)
        batch = sampler.batch(step)
        parts = losses(module, batch, cfg)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        done = step + 1
        if done % cfg.log_every == 0:
            elapsed = time.perf_counter() - t0
            log.log(
                done,
                "train",
                **{k: v.item() for k, v in parts.items()},
                lr=scheduler.get_last_lr()[0],
                crops_per_s=len(batch.masks) * (done - start) / elapsed,
                elapsed_s=elapsed,
            )
        if done % cfg.val_every == 0 or done == cfg.max_steps:
            last_val = validate(module, val_sampler)
            log.log(done, "val", **last_val)
        if done % cfg.save_every == 0 or done == cfg.max_steps:
            tmp = out / "checkpoints" / f".tmp-step-{done}"
            write_checkpoint(
                tmp, module, optimizer, scheduler, {"step": done, "config_hash": fingerprint, "world_size": 1}
            )
            commit_checkpoint(tmp, out / "checkpoints" / f"step-{done}", out, cfg.keep_checkpoints)
    final = save_final(module, cfg, out)
    log.close()
    return TowerResult(cfg.max_steps - start, time.perf_counter() - t0, final, last_val)


def region_quality_pairs(quality: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(ordered right, pairs) among regions of one photo whose truths differ by the pair margin."""
    worse = (truth[:, None] - truth[None, :]) <= -RANK_MARGIN  # row worse than column
    return int(((quality[:, None] - quality[None, :]) < 0)[worse].sum()), int(worse.sum())
