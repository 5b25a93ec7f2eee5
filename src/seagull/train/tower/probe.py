"""Does a tower see quality? A linear probe on its frozen region features, the same for every tower.

Each region's feature is what the MFE pools for its global token: the mask-weighted mean of the four
tower levels with the whole photo at the model's input size (:func:`.heads.region_features`). On the
train split's photos a ridge regression learns the full-reference quality and, one-vs-rest, which
distortion types are present; on the test split's photos it is scored by quality SRCC, type F1
(sample-averaged, a type named when its output passes 0.5) and within-photo pair accuracy (every
two regions of one photo, across its distorted versions, whose quality labels differ by the pair
margin). Only the tower changes between the rows of a run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...display import printable
from ...imageio import load_image
from ...labels import DISTORTION_TYPES
from ...metrics.stats import sample_average_prf, srcc, type_set
from ...model.config import get_config
from ...model.vision import VisionTower, build_vision_tower
from ...model.weights import load_state_file
from ...roi import rle_to_mask
from .data import LabelledImage, load_photos, severity_vector
from .heads import region_features
from .trainer import region_quality_pairs

IMAGENET = "imagenet"  # the package weights the model config names (stage 0's start point)
RIDGE = 1.0  # on standardised features; one value for every tower


@dataclass
class ProbeResult:
    tower: str
    quality_srcc: float
    type_f1: float
    pair_acc: float
    train_rois: int
    test_rois: int
    pairs: int


def load_tower(source: str, model: str = "seagull-tiny") -> VisionTower:
    """``imagenet`` (the package weights) or a stage-0 ``tower.safetensors``; frozen, eval mode."""
    vision = get_config(model).vision
    if source == IMAGENET:
        return build_vision_tower(vision).eval()
    tower = build_vision_tower({**vision, "weights": "none"})
    tower.load_trunk_state(load_state_file(source), source, ("classifier.",))
    return tower.eval()


@torch.no_grad()
def photo_features(
    tower: VisionTower, photo: Sequence[LabelledImage]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features ``[R, D]``, quality ``[R]`` and severities ``[R, 6]`` of every region of every record."""
    feats, quality, severity = [], [], []
    s = tower.image_size
    for im in photo:
        rgb = torch.from_numpy(np.array(load_image(im.path))).permute(2, 0, 1).float()[None] / 255.0
        pixels = F.interpolate(rgb, size=(s, s), mode="bilinear", antialias=True)
        masks = torch.from_numpy(np.stack([rle_to_mask(r.rle) for r in im.rois]))
        feats.append(region_features(tower, pixels, [masks]).numpy())
        quality += [float(r.quality) for r in im.rois]
        severity += [severity_vector(r) for r in im.rois]
    return np.concatenate(feats), np.array(quality), np.array(severity)


def ridge_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardisation and ridge weights (with bias) for targets ``y [N, K]``."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    reg = RIDGE * np.eye(z.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(z.T @ z + reg, z.T @ y)
    return mean, std, w


def ridge_predict(fit: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    mean, std, w = fit
    return np.hstack([(x - mean) / std, np.ones((len(x), 1))]) @ w


def probe_tower(
    tower: VisionTower,
    name: str,
    train: list[list[LabelledImage]],
    test: list[list[LabelledImage]],
) -> ProbeResult:
    tr = [photo_features(tower, p) for p in train]
    x = np.concatenate([f for f, _, _ in tr])
    y = np.hstack([np.concatenate([q for _, q, _ in tr])[:, None], np.concatenate([s for _, _, s in tr]) > 0])
    fit = ridge_fit(x, y.astype(np.float64))
    preds, truth, labels, named, right, pairs = [], [], [], [], 0, 0
    for photo in test:
        f, q, sev = photo_features(tower, photo)
        out = ridge_predict(fit, f)
        preds += out[:, 0].tolist()
        truth += q.tolist()
        for s_row, o_row in zip(sev, out[:, 1:], strict=True):
            labels.append(type_set(t for t, v in zip(DISTORTION_TYPES, s_row, strict=True) if v > 0))
            named.append(type_set(t for t, v in zip(DISTORTION_TYPES, o_row, strict=True) if v > 0.5))
        r, n = region_quality_pairs(out[:, 0], q)
        right, pairs = right + r, pairs + n
    return ProbeResult(
        name,
        srcc(preds, truth),
        sample_average_prf(labels, named).f1,
        right / pairs if pairs else float("nan"),
        len(x),
        len(truth),
        pairs,
    )


def run_probe(
    towers: Sequence[str],
    data: Sequence[Path],
    train_photos: int,
    test_photos: int,
    train_split: str = "train",
    test_split: str = "test",
    model: str = "seagull-tiny",
) -> list[ProbeResult]:
    """The probe for each tower on the first ``train_photos`` / ``test_photos`` photos of the splits."""
    loaded = [load_tower(t, model) for t in towers]  # a bad tower file fails before the photos are read
    train = load_photos(data, train_split)[:train_photos]
    test = load_photos(data, test_split)[:test_photos]
    return [probe_tower(tower, t, train, test) for tower, t in zip(loaded, towers, strict=True)]


def format_table(results: Sequence[ProbeResult]) -> str:
    rows = [
        "| tower | quality SRCC | type F1 | within-photo pairs | regions (train / test) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {printable(r.tower)} | {r.quality_srcc:.3f} | {100 * r.type_f1:.1f} % "
            f"| {r.pair_acc:.3f} ({r.pairs}) "
            f"| {r.train_rois} / {r.test_rois} |"
        )
    return "\n".join(rows)


def write_results(results: Sequence[ProbeResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
