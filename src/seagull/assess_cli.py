"""`seagull assess` (ROI assessment) and `seagull map` (every region of an image)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RoiError

TASK_CHOICES = ("quality", "importance", "distortion")


def _tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in tasks if t not in TASK_CHOICES]
    if bad or not tasks:
        raise argparse.ArgumentTypeError(
            f"tasks must be a comma-separated subset of {','.join(TASK_CHOICES)}"
        )
    return tasks


def every_region(image: np.ndarray, max_regions: int = 24) -> list:
    """Automatic object-level regions (component-level where objects are few), largest first."""
    from .proposals import RegionFilter, auto_regions
    from .roi import Roi

    rois = RegionFilter(min_frac=0.01, max_frac=0.9)(auto_regions(image, ("object",)))
    if len(rois) < 4:
        rois = RegionFilter(min_frac=0.005, max_frac=0.9)(rois + auto_regions(image, ("component",)))
    rois = rois[:max_regions]
    return [Roi(r.mask, f"region{i + 1}", r.source) for i, r in enumerate(rois)]


def make_roi_builder(args: argparse.Namespace):
    """A function image -> ROIs from the command-line options (the same for every image)."""
    from .proposals import point_to_mask
    from .roi import RoiSpec, load_roi_file, parse_box, parse_point

    specs: list[RoiSpec] = [parse_box(b, args.box_format) for b in args.box or []]
    specs += [parse_point(p) for p in args.point or []]
    specs += [RoiSpec("mask", m, Path(m).name) for m in args.mask or []]
    specs += [RoiSpec("rle", r, f"rle{i}") for i, r in enumerate(args.rle or [])]
    if args.rois:
        specs += load_roi_file(args.rois)
    point_proposer = point_to_mask
    if args.sam:
        from .proposals import SamProposer

        sam = SamProposer(args.sam, args.sam_type)
        point_proposer = sam.point

    def build(image: np.ndarray) -> list:
        from .roi import Roi

        rois = [s.resolve(image, point_proposer) for s in specs]
        if args.every:
            rois += every_region(image)
        if not rois:  # no ROI given: the whole picture
            rois = [Roi(np.ones(image.shape[:2], bool), "whole image", "whole")]
        names = [r.name for r in rois]
        if len(set(names)) != len(names):
            raise RoiError(f"ROI names must be unique, got {names}")
        return rois

    return build


def format_table(item: dict[str, Any]) -> str:
    if "error" in item:
        return f"{item['image']}: error: {item['error']}"
    lines = [f"{item['image']} ({item['width']}x{item['height']})"]
    lines.append(
        f"  {'ROI':<18}{'bbox x,y,w,h':<22}{'quality':<18}{'importance':<20}distortions (confidence)"
    )
    for r in item["rois"]:
        q = f"{r['quality']:.3f} {r['quality_level']}" if r.get("quality") is not None else "-"
        i = f"{r['importance']:.3f} {r['importance_level']}" if r.get("importance") is not None else "-"
        present = [d for d in r.get("distortions", []) if d["present"]]
        if r.get("distortions") and not present:
            dist = "none"
        else:
            dist = (
                ", ".join(f"{d['severity_level']} {d['type']} ({d['confidence']:.2f})" for d in present)
                or "-"
            )
        bbox = ",".join(str(v) for v in r["bbox"])
        lines.append(f"  {r['name'][:17]:<18}{bbox:<22}{q:<18}{i:<20}{dist}")
        for task, text in (r.get("answers") or {}).items():
            lines.append(f"      {task}: {text}")
    return "\n".join(lines)


def save_annotated(item: dict[str, Any], rois: list, out: Path) -> None:
    from .imageio import load_image, save_image
    from .visualize import Annotation, annotate

    image = load_image(item["image"])
    anns = []
    for roi, r in zip(rois, item["rois"], strict=True):
        lines = []
        if r.get("quality") is not None:
            lines.append(f"quality {r['quality']:.2f} {r['quality_level']}")
        if r.get("importance") is not None:
            lines.append(f"importance {r['importance']:.2f} {r['importance_level']}")
        present = [f"{d['severity_level']} {d['type']}" for d in r.get("distortions", []) if d["present"]]
        if r.get("distortions"):
            lines.append(", ".join(present) if present else "no distortion")
        anns.append(Annotation(roi.mask, r["name"], lines, r.get("quality")))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, annotate(image, anns))


def _load_assessor(args: argparse.Namespace):
    from .assess import Assessor

    return Assessor(args.model) if args.model else Assessor()


def cmd_assess(args: argparse.Namespace) -> int:
    from .batch import assess_local, assess_ray, expand_inputs

    paths = expand_inputs(args.images)
    build = make_roi_builder(args)
    if len(paths) == 1 and not args.output and not args.ray:
        return _assess_single(args, paths[0], build)
    if args.ray:
        model = args.model
        results = assess_ray(
            lambda: __import__("seagull").Assessor(model), paths, build, args.tasks, args.text, args.ray
        )
    else:
        results = assess_local(
            _load_assessor(args), paths, build, args.tasks, args.text, progress=not args.quiet
        )
    failed = 0
    sink = open(args.output, "w", encoding="utf-8") if args.output else None  # noqa: SIM115
    try:
        for item in results:
            failed += "error" in item
            if sink:
                sink.write(json.dumps(item) + "\n")
            else:
                print(json.dumps(item) if args.json else format_table(item))
    finally:
        if sink:
            sink.close()
    print(
        f"{len(paths) - failed} images assessed, {failed} failed"
        + (f" -> {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


def _assess_single(args: argparse.Namespace, path: Path, build) -> int:
    """One image: errors propagate (one line on stderr, exit 2)."""
    from .imageio import load_image

    image = load_image(path)
    rois = build(image)
    results = _load_assessor(args).assess(image, rois, tasks=args.tasks, text=args.text)
    item = {
        "image": str(path),
        "width": image.shape[1],
        "height": image.shape[0],
        "rois": [r.to_dict() for r in results],
    }
    print(json.dumps(item, indent=2) if args.json else format_table(item))
    if args.out:
        save_annotated(item, rois, args.out)
        print(f"annotated picture: {args.out}", file=sys.stderr)
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from .imageio import load_image, save_image
    from .visualize import region_heatmap

    image = load_image(args.image)
    rois = every_region(image, args.max_regions)
    assessor = _load_assessor(args)
    results = assessor.assess(image, rois, tasks=("quality", "importance"))
    key = args.by
    scores = [getattr(r, key) for r in results]
    heat = region_heatmap(
        image, [r.mask for r in rois], scores if key == "quality" else [1 - s for s in scores]
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, heat)
    ranked = sorted(zip(results, rois, strict=True), key=lambda x: x[0].quality)
    print(f"{args.image}: {len(rois)} regions; heatmap by {key} -> {out}")
    print(f"  {'rank':<6}{'region':<12}{'bbox':<22}{'area %':>8}{'quality':>16}{'importance':>20}")
    for k, (res, roi) in enumerate(ranked[: args.top], 1):
        frac = 100 * roi.area / roi.mask.size
        print(
            f"  {k:<6}{res.name:<12}{','.join(map(str, res.bbox)):<22}{frac:8.1f}"
            f"{res.quality:9.3f} {res.quality_level:<7}{res.importance:9.3f} {res.importance_level}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return 0


def _add_roi_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("regions (several may be combined; none = the whole image)")
    g.add_argument("--box", action="append", metavar="X,Y,W,H", help="a box (repeatable)")
    g.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh")
    g.add_argument(
        "--point", action="append", metavar="X,Y", help="a point; the region under it is segmented"
    )
    g.add_argument(
        "--mask", action="append", metavar="FILE", help="a mask image, non-zero = inside (repeatable)"
    )
    g.add_argument(
        "--rle", action="append", metavar="JSON", help='a COCO RLE, e.g. \'{"size":[h,w],"counts":"..."}\''
    )
    g.add_argument(
        "--rois", type=Path, metavar="FILE.json", help="a JSON list of ROIs (see examples/coffee_rois.json)"
    )
    g.add_argument("--every", action="store_true", help="every automatic region of the image")
    g.add_argument(
        "--sam",
        metavar="CHECKPOINT",
        help="segment points with this SAM checkpoint instead of the weight-free default",
    )
    g.add_argument("--sam-type", default="vit_b", help="SAM model type of the checkpoint (default vit_b)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assess", help="assess the quality, importance and distortions of regions of images")
    p.add_argument("images", nargs="+", help="image files, folders or .txt lists of paths")
    p.add_argument("--model", help="model folder (default: the shipped seagull-tiny)")
    _add_roi_options(p)
    p.add_argument(
        "--tasks", type=_tasks, default=TASK_CHOICES, help="comma-separated: quality,importance,distortion"
    )
    p.add_argument("--text", action="store_true", help="also generate the model's text answers")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", type=Path, help="write an annotated picture (single image)")
    p.add_argument("--output", type=Path, help="write JSONL, one line per image (batches)")
    p.add_argument(
        "--ray", nargs="?", const="local", default=None, metavar="ADDRESS", help="run the batch on Ray"
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_assess)

    m = sub.add_parser("map", help="assess every automatic region and draw a quality heatmap")
    m.add_argument("image")
    m.add_argument("--model", help="model folder (default: the shipped seagull-tiny)")
    m.add_argument("--out", required=True, help="heatmap PNG to write")
    m.add_argument("--by", choices=("quality", "importance"), default="quality")
    m.add_argument("--max-regions", type=int, default=24)
    m.add_argument("--top", type=int, default=10, help="how many of the worst regions to list")
    m.add_argument("--json", help="also write the assessments as JSON")
    m.set_defaults(func=cmd_map)
