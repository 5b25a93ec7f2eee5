"""`seagull assess` (ROI assessment) and `seagull map` (every region of an image)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..display import printable
from ..errors import ConfigError, RoiError
from ..imageio import DEFAULT_MAX_PIXELS
from ..labels import TASKS
from ..options import int_range, positive_int
from ..paths import refuse_overwrite, refuse_same_outputs
from .batch import DEFAULT_BATCH_SIZE
from .region_maps import DEFAULT_TILE, MAP_BY, MAP_MODES, MIN_TILE

# ROIs per image the CLI assesses unless --max-rois says otherwise. Memory stays bounded at any count
# (ROIs are kept as bounding-box crops and assessed 32 at a time: 1.3 GB for 300 or 3,000 ROIs in
# benchmarks/many_rois.py), but time grows with the count (about 0.1 s per ROI on 2 quiet CPU cores),
# so a runaway ROI file is refused.
DEFAULT_MAX_ROIS = 1000

TASK_CHOICES = TASKS


def _tasks(text: str) -> tuple[str, ...]:
    """``--tasks``: the request layer's rule (:func:`seagull.roi.parse_tasks`) as a usage error."""
    from ..roi import parse_tasks

    try:
        return parse_tasks(text)
    except RoiError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def check_output_path(path: Path, option: str, image: bool = False) -> None:
    """Fail early (before the model loads) when ``path`` cannot be written: a folder, a read-only or
    missing place, or (``image``) a suffix no image format is saved under. Missing folders are made."""
    from PIL import Image

    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name inside it, e.g. {path / 'out.png'}")
    if image:
        Image.init()
        fmt = Image.registered_extensions().get(path.suffix.lower())
        if fmt not in Image.SAVE:
            raise ConfigError(f"{option} {path}: unknown picture type {path.suffix!r}; use .png or .jpg")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as e:
        raise ConfigError(f"{option} {path} cannot be written ({e.strerror}); choose a writable place") from e
    finally:
        if not existed:
            path.unlink(missing_ok=True)


def assess_inputs(args: argparse.Namespace, paths: list[Path]) -> list[tuple[str, object]]:
    """Every file ``seagull assess`` reads, as (how it was named, path), for the output checks."""
    named = [("image", p) for p in paths]
    named += [("image list", p) for p in args.images if Path(p).suffix.lower() == ".txt"]
    named += [("--mask", m) for m in args.mask or []]
    named += [("--rois", args.rois), ("--sam", args.sam), ("--model", args.model)]
    return named


def make_roi_builder(args: argparse.Namespace):
    """A function image -> ROIs from the command-line options (the same for every image): the
    request layer (:func:`seagull.roi.request_specs`, :func:`seagull.roi.request_rois`) parses them."""
    from ..proposals import every_region, point_to_mask
    from ..roi import load_roi_file, request_rois, request_specs
    from .region_maps import judgeable
    from .roi_list import RoiList

    specs = request_specs(
        boxes=args.box or [],
        points=args.point or [],
        masks=[(Path(m).name, m) for m in args.mask or []],
        rles=args.rle or [],
        entries=load_roi_file(args.rois) if args.rois else [],
        box_format=args.box_format,
    )
    max_rois = getattr(args, "max_rois", DEFAULT_MAX_ROIS)
    check_roi_count(len(specs), max_rois, "given")  # before any image or the model is loaded
    point_proposer = point_to_mask
    if args.sam:
        from ..proposals import SamProposer

        sam = SamProposer(args.sam, args.sam_type)
        point_proposer = sam.point

    def build(image: np.ndarray) -> RoiList:
        def every(count: int) -> list:
            found = judgeable(every_region(image))
            check_roi_count(count + len(found), max_rois, "with --every's regions")
            return found

        # Masks kept as bounding-box crops: memory does not grow with the image. No ROI: the whole image.
        return request_rois(image, specs, RoiList(), point_proposer, every if args.every else None)

    return build


def check_roi_count(n: int, max_rois: int, what: str) -> None:
    """Refuse more than ``max_rois`` ROIs for one image (--max-rois), naming the count and the fix."""
    if n > max_rois:
        raise RoiError(
            f"{n} ROIs {what} for one image, over the limit of {max_rois} (--max-rois); split them into "
            f"several runs or pass --max-rois {n} (memory stays bounded; time grows with the count)"
        )


def format_table(item: dict[str, Any]) -> str:
    if "error" in item:
        return f"{printable(item['image'])}: error: {printable(item['error'])}"
    lines = [f"{printable(item['image'])} ({item['width']}x{item['height']})"]
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
        lines.append(f"  {printable(r['name'])[:17]:<18}{bbox:<22}{q:<18}{i:<20}{dist}")
        for task, text in (r.get("answers") or {}).items():
            lines.append(f"      {task}: {printable(text)}")
    return "\n".join(lines)


def save_annotated(item: dict[str, Any], image: np.ndarray, rois: list, out: Path) -> None:
    from ..imageio import save_image
    from .pictures import Annotation, annotate

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


def make_assessor(model: str | None, max_pixels: int = DEFAULT_MAX_PIXELS):
    from .assessor import Assessor

    assessor = Assessor(model) if model else Assessor()
    assessor.max_pixels = max_pixels
    return assessor


class _LazyAssessor:
    """Loads the model at the first assessment, so that bad input fails before the model's load time."""

    def __init__(self, model: str | None, max_pixels: int) -> None:
        self.model, self.max_pixels, self.assessor = model, max_pixels, None

    def assess(self, *args: Any, **kwargs: Any) -> Any:
        if self.assessor is None:
            self.assessor = make_assessor(self.model, self.max_pixels)
        return self.assessor.assess(*args, **kwargs)


def cmd_assess(args: argparse.Namespace) -> int:
    from .batch import ItemOptions, assess_folder, assess_ray, expand_inputs, resume_output

    paths = expand_inputs(args.images)
    inputs = assess_inputs(args, paths)
    refuse_overwrite("--out", args.out, inputs)  # before anything opens an output
    refuse_overwrite("--output", args.output, inputs)
    if args.out:
        if len(paths) > 1 or args.output or args.ray:
            raise ConfigError("--out draws one image's assessment; for a batch write JSONL with --output")
        check_output_path(args.out, "--out", image=True)
    if args.output:
        check_output_path(args.output, "--output")
    elif args.resume:
        raise ConfigError("--resume goes on with the JSONL file of an earlier run: name it with --output")
    options = ItemOptions(make_roi_builder(args), args.tasks, args.text, args.max_pixels)
    if len(paths) == 1 and not args.output and not args.ray:
        return _assess_single(args, paths[0], options)
    if args.resume:
        done = resume_output(args.output)
        paths = [p for p in paths if str(p) not in done]
        print(f"{len(done)} images already in {printable(args.output)}, skipped", file=sys.stderr)
    if args.ray:
        model, max_pixels = args.model, args.max_pixels
        results = assess_ray(
            lambda: make_assessor(model, max_pixels), paths, options, args.ray, progress=not args.quiet
        )
    else:
        from ..workers import wait_passively

        wait_passively()  # before torch loads: the decode threads share the cores with torch's
        assessor = make_assessor(args.model, args.max_pixels)
        results = assess_folder(assessor, paths, options, not args.quiet, args.batch_size)
    failed = _write_results(results, args)
    print(
        f"{len(paths) - failed} images assessed, {failed} failed"
        + (f" -> {printable(args.output)}" if args.output else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


def _write_results(results, args: argparse.Namespace) -> int:
    """Print (or write as JSONL to --output) every item as it comes; returns how many failed."""
    from .items import item_json

    failed = 0
    mode = "a" if args.resume else "w"
    sink = open(args.output, mode, encoding="utf-8") if args.output else None  # noqa: SIM115
    try:
        for item in results:
            failed += "error" in item
            line = item_json(item)
            if sink:
                sink.write(line + "\n")
                sink.flush()
            else:
                print(line if args.json else format_table(item), flush=True)
    finally:
        if sink:
            sink.close()
    return failed


def _assess_single(args: argparse.Namespace, path: Path, options) -> int:
    """One image: errors propagate (one line on stderr, exit 2)."""
    from .batch import assess_image
    from .items import item_json

    assessor = _LazyAssessor(args.model, args.max_pixels)
    item, image, rois = assess_image(assessor, path, options)
    print(item_json(item, indent=2) if args.json else format_table(item))
    if args.out:
        save_annotated(item, image, rois, args.out)
        print(f"annotated picture: {printable(args.out)}", file=sys.stderr)
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from ..imageio import check_image_side, load_image, save_image
    from .items import item_json
    from .region_maps import check_map_options, map_image, map_rois, map_tasks, region_map

    check_map_options(args.mode, args.by, args.tile)
    inputs = [("image", args.image), ("--model", args.model)]
    refuse_overwrite("--out", args.out, inputs)  # before anything opens an output
    refuse_overwrite("--json", args.json, inputs)
    refuse_same_outputs([("--out", args.out), ("--json", args.json)])
    out = Path(args.out)
    check_output_path(out, "--out", image=True)
    if args.json:
        check_output_path(Path(args.json), "--json")
    image = load_image(args.image, args.max_pixels)
    check_image_side(image, args.image)
    rois = map_rois(image, args.mode, args.tile, args.max_regions)
    if not rois:
        raise RoiError(f"{args.image}: no automatic region is large enough to assess; try --mode tiles")
    results = make_assessor(args.model, args.max_pixels).assess(image, rois, tasks=map_tasks(args.by))
    records = [r.to_dict() for r in results]
    item_json({"image": args.image, "rois": records})  # refuses NaN before anything is drawn
    rmap = region_map(results, args.by)
    save_image(out, map_image(image, rois, rmap, args.mode))
    print(
        f"{printable(args.image)}: {len(rois)} {args.mode}; map of {rmap.meaning.label} -> {printable(out)}"
    )
    print(f"  {'rank':<6}{'region':<16}{'bbox':<20}{'area %':>7}{args.by:>14}{'quality':>16}")
    for k, i in enumerate(rmap.worst[: args.top], 1):
        res, roi = results[i], rois[i]
        frac = 100 * roi.area / roi.mask.size
        print(
            f"  {k:<6}{printable(res.name):<16}{','.join(map(str, res.bbox)):<20}{frac:7.1f}"
            f"{rmap.values[i]:14.3f}{res.quality:9.3f} {res.quality_level}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 0


def _add_roi_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("regions (several may be combined; none = the whole image)")
    g.add_argument(
        "--box",
        action="append",
        metavar="X,Y,W,H",
        help="a box in pixels, clipped to the image (repeatable); negative numbers work: --box -10,0,50,40",
    )
    g.add_argument(
        "--box-format",
        choices=("xywh", "xyxy"),
        default="xywh",
        help='how --box is read (a --rois entry gives its own "format", xywh by default)',
    )
    g.add_argument(
        "--point", action="append", metavar="X,Y", help="a point; the region under it is segmented"
    )
    g.add_argument(
        "--mask",
        action="append",
        metavar="FILE",
        help="a mask image, non-zero = inside, or opaque = inside in a cut-out (repeatable)",
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


# argparse takes "-10,0,5,5" for an option unless it looks like a negative number; these commands have
# no option that starts with "-<digit>", so every such word is a value (as Python 3.13's argparse does).
NEGATIVE_VALUE = re.compile(r"^-\.?\d")


def _add_common_options(p: argparse.ArgumentParser) -> None:
    p._negative_number_matcher = NEGATIVE_VALUE  # type: ignore[attr-defined]
    p.add_argument("--model", help="model folder (default: the shipped seagull-tiny)")
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger images and masks (default {DEFAULT_MAX_PIXELS}; guards against decompression bombs)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("assess", help="assess the quality, importance and distortions of regions of images")
    p.add_argument("images", nargs="+", help="image files, folders or .txt lists of paths")
    _add_common_options(p)
    _add_roi_options(p)
    p.add_argument(
        "--tasks", type=_tasks, default=TASK_CHOICES, help="comma-separated: quality,importance,distortion"
    )
    p.add_argument(
        "--max-rois",
        type=positive_int,
        default=DEFAULT_MAX_ROIS,
        help=f"refuse more ROIs per image (default {DEFAULT_MAX_ROIS}; memory stays bounded, time grows)",
    )
    p.add_argument("--text", action="store_true", help="also generate the model's text answers")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", type=Path, help="write an annotated picture (single image)")
    p.add_argument("--output", type=Path, help="write JSONL, one line per image (batches)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="append to --output, skipping the images already in it (after an interrupted run)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"images per model pass of a local batch (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--ray", nargs="?", const="local", default=None, metavar="ADDRESS", help="run the batch on Ray"
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_assess)

    m = sub.add_parser("map", help="assess every region of a photo and draw a map of where the damage is")
    m.add_argument("image")
    _add_common_options(m)
    m.add_argument("--out", required=True, help="map picture (PNG) to write")
    m.add_argument(
        "--mode",
        choices=MAP_MODES,
        default=MAP_MODES[0],
        help="tiles: a grid of overlapping tiles (localises damage); segments: automatic content regions; "
        "superpixels: about --max-regions SLIC superpixels",
    )
    m.add_argument(
        "--tile",
        type=int_range(MIN_TILE),
        help=f"tile side in pixels, --mode tiles (default {DEFAULT_TILE}, 50%% overlap)",
    )
    m.add_argument(
        "--by",
        choices=MAP_BY,
        default="quality",
        help="what is mapped: quality, importance, one distortion type's confidence, or worst (the strongest)",
    )
    m.add_argument(
        "--max-regions", type=positive_int, default=24, help="regions for --mode segments / superpixels"
    )
    m.add_argument("--top", type=positive_int, default=10, help="how many of the worst regions to list")
    m.add_argument("--json", help="also write the assessments as JSON")
    m.set_defaults(func=cmd_map)
