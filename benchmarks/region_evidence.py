"""Which distortion types can be read from a region's evidence? Linear probes on the inputs the LM gets.

    python benchmarks/region_evidence.py [--data DIR] [--model M ...] [--train 300] [--test 150] [--smoke] [--save]

For every ROI of images drawn (seed 0) from a synthetic dataset folder's train and test splits: the
48 low-level statistics of :func:`seagull.model.lowlevel.roi_context_statistics` (the ROI's, minus the
whole image's, minus the rest of the photo's), the same with their squares and absolute values (the
six families' "too little" and "too much" pull the statistics opposite ways), and each model's global
and local region tokens (the two vectors the LM reads per ROI). The same ridge probe as ``seagull
tower-probe`` (one-vs-rest per type, and quality) is fitted on the train ROIs; on the test ROIs it
prints per type the AUC of "type labelled" against every other ROI, and of strongly damaged ROIs of
the type (quality < 0.8) against clean ROIs; and the quality SRCC. An AUC near 0.5 means the vectors
hardly carry that type, so no LM on top of them can name it reliably.
DIR defaults to runs/corpus-v2/bsds500; --model to the shipped model. ``--smoke``: a few ROIs of a
tiny corpus made from the example photos (train and test the same images).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import EXAMPLES, REPO, add_common_options, save_result
from seagull import Assessor
from seagull.eval.agreement import auc
from seagull.eval.protocol import text_table
from seagull.imageio import load_image
from seagull.labels import DISTORTION_TYPES
from seagull.metrics.stats import srcc
from seagull.model.lowlevel import roi_context_statistics
from seagull.records import SampleRecord, iter_records
from seagull.roi import rle_to_mask
from seagull.train.tower.probe import ridge_fit, ridge_predict

STRONG = 0.8  # label quality below which a damaged ROI counts as strongly damaged


def region_vectors(models: dict[str, object], folder: Path, rec: SampleRecord) -> dict[str, np.ndarray]:
    """``{feature set: [R, D]}`` for every ROI of one record."""
    arr = load_image(folder / rec.image)
    masks = np.stack([rle_to_mask(r.rle) for r in rec.rois])
    image = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float() / 255.0
    low = roi_context_statistics(image, torch.from_numpy(masks), rest=True).numpy()
    out = {"low-level 48": low, "low-level 48, x^2, |x|": np.hstack([low, low**2, np.abs(low)])}
    with torch.inference_mode():
        for name, model in models.items():
            glob, local = model.encode_regions(model.encode_images([arr]), [masks])
            out[f"{name} global token"] = glob.float().reshape(len(masks), -1).numpy()
            out[f"{name} local token"] = local.float().reshape(len(masks), -1).numpy()
    return out


def collect(models: dict[str, object], folder: Path, records: list[SampleRecord]) -> dict[str, np.ndarray]:
    """Stacked vectors per feature set, with ``types [N, 6]`` (labelled) and ``quality [N]``."""
    parts: dict[str, list[np.ndarray]] = {}
    types, quality = [], []
    for rec in records:
        for name, v in region_vectors(models, folder, rec).items():
            parts.setdefault(name, []).append(v)
        for roi in rec.rois:
            labelled = {d.type for d in roi.distortions}
            types.append([t in labelled for t in DISTORTION_TYPES])
            quality.append(float(roi.quality))
    return {k: np.concatenate(v) for k, v in parts.items()} | {
        "types": np.array(types, bool),
        "quality": np.array(quality),
    }


def probe_rows(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> list[dict[str, object]]:
    rows = []
    y = np.hstack([train["quality"][:, None], train["types"]]).astype(np.float64)
    types, quality = test["types"], test["quality"]
    clean = ~types.any(1)
    for name in (k for k in train if k not in ("types", "quality")):
        out = ridge_predict(ridge_fit(train[name], y), test[name])
        row: dict[str, object] = {"features": name, "quality SRCC": round(srcc(out[:, 0], quality), 3)}
        for k, t in enumerate(DISTORTION_TYPES):
            s, has = out[:, k + 1], types[:, k]
            strong = has & (quality < STRONG)
            row[t] = round(auc(s[has], s[~has]), 3)
            row[f"{t} strong"] = round(auc(s[strong], s[clean]), 3)
        rows.append(row)
    return rows


def shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (results name no machine's folders)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def draw(folder: Path, split: str | None, n: int, seed: int) -> list[SampleRecord]:
    records = [r for r in iter_records(folder, split) if all(roi.quality is not None for roi in r.rois)]
    return random.Random(seed).sample(records, min(n, len(records)))


def smoke_corpus(out: Path) -> Path:
    from seagull.synth import SynthConfig, run_synthesis

    run_synthesis(SynthConfig(refs=EXAMPLES, out=out, settings=1, max_side=128, max_rois=3), progress=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / "runs" / "corpus-v2" / "bsds500")
    ap.add_argument(
        "--model", nargs="+", default=["shipped"], help="model folders; 'shipped' is the default model"
    )
    ap.add_argument("--train", type=int, default=300, help="train-split images to fit the probes on")
    ap.add_argument("--test", type=int, default=150, help="test-split images to score them on")
    ap.add_argument("--seed", type=int, default=0)
    add_common_options(ap, "region_evidence")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        splits: tuple[str | None, str | None] = ("train", "test")
        if args.smoke:
            args.data, args.train, args.test, splits = smoke_corpus(Path(tmp) / "corpus"), 4, 4, (None, None)
        models = {Path(m).name: Assessor(None if m == "shipped" else m).model for m in args.model}
        train = collect(models, args.data, draw(args.data, splits[0], args.train, args.seed))
        test = collect(models, args.data, draw(args.data, splits[1], args.test, args.seed))
    rows = probe_rows(train, test)
    n_strong = {
        t: int((test["types"][:, k] & (test["quality"] < STRONG)).sum())
        for k, t in enumerate(DISTORTION_TYPES)
    }
    print(f"{len(train['quality'])} train ROIs, {len(test['quality'])} test ROIs from {shown(args.data)}")
    print("AUC of the type probe: labelled vs every other ROI")
    cols = ["features", *DISTORTION_TYPES, "quality SRCC"]
    print(text_table(cols, [[r[c] for c in cols] for r in rows]))
    print(
        f"AUC: strongly damaged (quality < {STRONG}) vs clean ROIs; strong ROIs per type {n_strong}, "
        f"clean {int((~test['types'].any(1)).sum())}"
    )
    strong = [[r["features"], *(r[f"{t} strong"] for t in DISTORTION_TYPES)] for r in rows]
    print(text_table(["features", *DISTORTION_TYPES], strong))
    save_result(
        args,
        {
            "data": shown(args.data),
            "models": args.model,
            "train_rois": len(train["quality"]),
            "test_rois": len(test["quality"]),
            "strong_per_type": n_strong,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
