"""Does ``seagull map`` show where the damage is? Photos with their left half damaged, mapped.

    python benchmarks/map_localisation.py [--images DIR] [--limit 4] [--tile 96] [--smoke] [--save]

Each photo's left half is blurred (Gaussian), noised or JPEG-compressed; each map mode (tiles,
segments) maps it ``--by quality`` and ``--by <that type>`` from one assessment. The score is the share
of the damaged half's area whose map value is below the clean half's median (above it for a type
map): 1 = the damage is found everywhere, about 0.5 = a map that does not localise, 0 = a flat map.
The oracle rows put the full-reference quality (seagull.metrics.fr) of the same regions on the map,
so they show whether the regions can localise when the scores are right. Seconds per map include the
regions, the assessment and the picture. DIR defaults to the shared Kodak photos
(../shared/data/kodak/images); ``--smoke`` maps one small example photo.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from common import EXAMPLES, add_common_options, save_result
from seagull.assess.commands import make_assessor
from seagull.assess.region_maps import MAP_MODES, map_image, map_rois, map_tasks, pixel_map, region_map
from seagull.imageio import load_image
from seagull.metrics.fr import roi_quality
from seagull.roi import Roi

DAMAGE = ("blur", "noise", "compression")


def default_images() -> Path:
    env = os.environ.get("SEAGULL_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return root / "kodak" / "images"


def damage_left_half(image: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """The photo with its left half blurred, noised or JPEG-compressed."""
    if kind == "blur":
        bad = cv2.GaussianBlur(image, (0, 0), sigmaX=4.0)
    elif kind == "noise":
        noise = np.random.default_rng(seed).normal(0, 30, image.shape)
        bad = np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    else:
        ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 8])
        bad = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    out = image.copy()
    half = image.shape[1] // 2
    out[:, :half] = bad[:, :half]
    return out


def localisation(values: np.ndarray, higher_is_worse: bool) -> float:
    """Share of the left (damaged) half beyond the right (clean) half's median; NaN pixels count as missed."""
    half = values.shape[1] // 2
    clean = values[:, half:]
    median = np.nanmedian(clean)
    bad = values[:, :half]
    hit = bad > median if higher_is_worse else bad < median
    return float(np.mean(np.where(np.isfinite(bad), hit, False)))


def run(images: list[Path], tile: int | None, max_side: int) -> list[dict]:
    assessor = make_assessor(None)
    assessor.assess(np.zeros((32, 32, 3), np.uint8), [Roi(np.ones((32, 32), bool))])  # loads the model
    rows = []
    for path in images:
        photo = load_image(path)
        if max(photo.shape[:2]) > max_side:
            s = max_side / max(photo.shape[:2])
            photo = cv2.resize(
                photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA
            )
        for kind in DAMAGE:
            damaged = damage_left_half(photo, kind)
            for mode in MAP_MODES:
                t0 = time.perf_counter()
                rois = map_rois(damaged, mode, tile, 24)
                results = assessor.assess(damaged, rois, tasks=map_tasks(kind))
                for by in ("quality", kind):
                    rmap = region_map(results, by)
                    if by == "quality":
                        map_image(damaged, rois, rmap, mode)  # the picture is part of a map's cost
                        seconds = time.perf_counter() - t0
                    values = pixel_map([r.mask for r in rois], rmap.values, mode)
                    rows.append(
                        dict(
                            photo=path.name,
                            damage=kind,
                            mode=mode,
                            by=by,
                            regions=len(rois),
                            found=localisation(values, rmap.meaning.higher_is_worse),
                            seconds=seconds,
                        )
                    )
                fr = roi_quality(photo, damaged, [r.mask for r in rois])
                values = pixel_map([r.mask for r in rois], fr, mode)
                rows.append(
                    dict(
                        photo=path.name,
                        damage=kind,
                        mode=mode,
                        by="oracle FR quality",
                        regions=len(rois),
                        found=localisation(values, False),
                        seconds=None,
                    )
                )
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Mean over photos for each damage, mode and what is mapped."""
    keys = sorted(
        {(r["damage"], r["mode"], r["by"]) for r in rows}, key=lambda k: (DAMAGE.index(k[0]), k[1], k[2])
    )
    out = []
    for damage, mode, by in keys:
        sel = [r for r in rows if (r["damage"], r["mode"], r["by"]) == (damage, mode, by)]
        secs = [r["seconds"] for r in sel if r["seconds"] is not None]
        out.append(
            dict(
                damage=damage,
                mode=mode,
                by=by,
                photos=len(sel),
                regions=float(np.mean([r["regions"] for r in sel])),
                found=float(np.mean([r["found"] for r in sel])),
                seconds=float(np.mean(secs)) if secs else None,
            )
        )
    return out


def print_table(table: list[dict]) -> None:
    print(f"{'damage':<12}{'mode':<12}{'by':<20}{'regions':>8}{'damage found':>14}{'s / map':>9}")
    for r in table:
        secs = f"{r['seconds']:9.1f}" if r["seconds"] is not None else f"{'-':>9}"
        print(f"{r['damage']:<12}{r['mode']:<12}{r['by']:<20}{r['regions']:8.0f}{r['found']:14.2f}{secs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=default_images())
    ap.add_argument("--limit", type=int, default=4, help="how many photos (the first ones by name)")
    ap.add_argument("--tile", type=int, help="tile side in pixels (default: the map's default)")
    ap.add_argument("--max-side", type=int, default=768, help="photos are shrunk to this longer side")
    add_common_options(ap, "map_localisation")
    args = ap.parse_args()
    if args.smoke:
        args.images, args.limit, args.max_side, args.tile = EXAMPLES, 1, 160, 48
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[
        : args.limit
    ]
    if not images:
        raise SystemExit(f"no photos in {args.images}")
    rows = run(images, args.tile, args.max_side)
    table = summary(rows)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    print(
        f"{len(images)} photos from {args.images}, longer side <= {args.max_side}, tile {args.tile or 'default'}; {machine}"
    )
    print_table(table)
    save_result(
        args,
        {
            "machine": machine,
            "images": [p.name for p in images],
            "tile": args.tile,
            "max_side": args.max_side,
            "table": table,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
