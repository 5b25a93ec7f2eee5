"""Assessor speed: the batched path vs the released inference pattern, same model, same run.

Work: 10 ROIs x 3 questions (quality, importance, distortion) on one image, every number of
:class:`seagull.region_prediction.RegionPrediction` (level scores, per-type confidences, severities).
- batched (the Assessor): image encoded once, all ROIs through the MFE together, the shared prompt
  prefix cached once, all ROI-question suffixes batched;
- released pattern: for every ROI and every question, the image is encoded again, one ROI goes
  through the MFE, and the full prompt (image tokens included) runs through the LM without a cache
  (the distortion question's "With" prompt and its "With <severity>" prompts run as one call).
Both must give the same numbers: the run fails when they differ by more than TOLERANCE.
Prints a table; ``--save`` writes benchmarks/results/assess_speed.json.

    python benchmarks/assess_speed.py [--model FOLDER] [--repeats 3] [--rois 10] [--image PATH]
                                      [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import add_common_options, save_result  # noqa: E402
from seagull.assess import Assessor, default_model_dir  # noqa: E402
from seagull.imageio import load_image  # noqa: E402
from seagull.labels import TASKS  # noqa: E402
from seagull.model import build_model, load_tokenizer  # noqa: E402
from seagull.model.processor import AFTER_SEVERITY, IMPORTANCE, QUALITY, WITH, Prompt  # noqa: E402
from seagull.model.prompting import pad_batch  # noqa: E402
from seagull.model.scoring import RegionScores  # noqa: E402
from seagull.region_prediction import RegionPrediction  # noqa: E402
from seagull.roi import Roi, box_to_mask  # noqa: E402

TOLERANCE = 1e-4  # largest allowed |difference| of any score between the two paths
# The scoring prompts of each question (keys of SeagullProcessor.prompts).
QUESTION_KEYS = {
    "quality": [QUALITY],
    "importance": [IMPORTANCE],
    "distortion": [WITH, *AFTER_SEVERITY.values()],
}


def default_image() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # 512x512 photo shipped with scikit-image


def make_rois(h: int, w: int, n: int = 10) -> list[Roi]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        bw, bh = int(rng.integers(8, w // 2)), int(rng.integers(8, h // 2))
        x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        out.append(Roi(box_to_mask([x, y, bw, bh], h, w), name=f"roi{i}"))
    return out


@torch.inference_mode()
def released_pattern(a: Assessor, img: np.ndarray, rois: list[Roi]) -> list[RegionScores]:
    """One ROI and one question per call, the image re-encoded every time, full prompts, no cache."""
    model, prompts = a.model, a.processor.prompts
    results = []
    for roi in rois:
        ends: dict[Prompt, torch.Tensor] = {}
        for task in TASKS:
            keys = QUESTION_KEYS[task]
            enc = model.encode_pixels(a.processor.images([img], model.device))
            g, loc = model.encode_regions(enc, [roi.mask[None]])
            ids, mask = pad_batch([prompts[k] for k in keys], a.tokenizer.pad_token_id or 0, side="left")
            n = len(keys)
            inputs = model.build_inputs(
                ids, mask, None, enc, (g.expand(n, -1), loc.expand(n, -1)), [1] * n, "left"
            )
            logits, _ = model.run_lm(
                inputs["inputs_embeds"],
                inputs["attention_mask"],
                inputs["position_ids"],
                use_cache=False,
                logits_to_keep=2,
            )
            # The last two logit rows of each prompt: what the scorer reads at its end.
            ends.update({k: logits[i][None] for i, k in enumerate(keys)})
        results.extend(a.scorer.score_ends(ends))
    return results


def max_diff(x: list[RegionPrediction], y: list[RegionScores]) -> float:
    d = 0.0
    for p, q in zip(x, y, strict=True):
        d = max(d, abs(p.quality - q.quality.score), abs(p.importance - q.importance.score))
        for u, v in zip(p.distortions, q.distortions, strict=True):
            d = max(d, abs(u.confidence - v.confidence), abs(u.severity - v.severity))
    return d


def timed_pair(f_ours, f_rel, repeats: int) -> tuple[float, float, Any, Any]:
    """Alternate the two paths so both see the same machine load; keep each one's fastest run."""
    ours, rel = f_ours(), f_rel()  # warm-up
    t_ours, t_rel = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = f_ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rel = f_rel()
        t_rel.append(time.perf_counter() - t0)
    return min(t_ours), min(t_rel), ours, rel


def make_assessor(args: argparse.Namespace) -> tuple[Assessor, str]:
    """The model under test: a folder (default: the shipped model); in a smoke run, the micro
    ``seagull-test`` architecture with random weights and the shipped tokenizer."""
    if args.smoke:
        torch.manual_seed(0)
        tok = load_tokenizer(default_model_dir())
        return Assessor(build_model("seagull-test", tokenizer=tok).eval(), tokenizer=tok), "seagull-test"
    folder = args.model or default_model_dir()
    return Assessor(folder), str(args.model or "shipped default model")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped default model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rois", type=int, default=10)
    ap.add_argument("--image", default=None, help="image file (default: scikit-image astronaut, 512x512)")
    add_common_options(ap, "assess_speed")
    args = ap.parse_args()
    a, model_name = make_assessor(args)
    img = load_image(args.image) if args.image else default_image()
    if args.smoke:  # one small ROI set on a quarter-size copy: seconds, the same code paths
        args.repeats, args.rois, img = 1, 1, np.ascontiguousarray(img[::4, ::4])
    rois = make_rois(img.shape[0], img.shape[1], args.rois)
    n_q = len(rois) * len(TASKS)
    t_ours, t_rel, ours, rel = timed_pair(
        lambda: a.assess(img, rois), lambda: released_pattern(a, img, rois), args.repeats
    )
    diff = max_diff(ours, rel)
    ms_ours, ms_rel = 1000 * t_ours / n_q, 1000 * t_rel / n_q
    speedup = ms_rel / ms_ours
    print(
        f"{model_name}: {len(rois)} ROIs x {len(TASKS)} questions, image {img.shape[1]}x{img.shape[0]}, "
        f"{torch.get_num_threads()} threads, best of {args.repeats} alternating runs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'path':<20}{'total s':>10}{'ms / ROI-question':>20}")
    print(f"{'released pattern':<20}{t_rel:>10.3f}{ms_rel:>20.1f}")
    print(f"{'batched (Assessor)':<20}{t_ours:>10.3f}{ms_ours:>20.1f}")
    equal = diff <= TOLERANCE
    print(
        f"speedup {speedup:.1f}x; max |difference| of outputs {diff:.2e} "
        f"({'within' if equal else 'OVER'} the tolerance {TOLERANCE:g})"
    )
    save_result(
        args,
        {
            "model": model_name,
            "image": args.image or "skimage.data.astronaut",
            "image_size": list(img.shape[:2]),
            "rois": len(rois),
            "questions": list(TASKS),
            "prompts_per_roi_released_pattern": sum(len(v) for v in QUESTION_KEYS.values()),
            "repeats": args.repeats,
            "timing": "best of `repeats` runs, the two paths alternating",
            "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "load_average_1min": os.getloadavg()[0],  # the CPU is shared; both paths saw the same load
            "ms_per_roi_question": {"ours": ms_ours, "released_pattern": ms_rel},
            "total_s": {"ours": t_ours, "released_pattern": t_rel},
            "speedup": speedup,
            "max_abs_diff_of_outputs": diff,
            "tolerance": TOLERANCE,
        },
    )
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
