"""Reference photos and their human segmentations, as folders lay them out: a plain folder of images
(or one image), a BSDS500 folder (``images/<split>/<id>.jpg`` with ``groundTruth/<split>/<id>.mat``) or
a COCO folder (the photos with an ``annotations/*.json`` instances file). Synthesis draws its ROIs from
them; evaluation suites use the human segments as regions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .imageio import SUPPORTED_SUFFIXES
from .proposals import bsds_regions, coco_regions
from .roi import Roi


@dataclass(frozen=True)
class Reference:
    id: str
    path: Path
    gt: Path | None = None  # BSDS500 ground-truth .mat
    coco: Path | None = None  # COCO instances json


def _ref_id(rel: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(rel.with_suffix("")).replace("/", "-"))


def _annotation_files(root: Path) -> list[Path]:
    folder = Path(root) / "annotations"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def implicit_annotations(root: Path) -> Path | None:
    """The file folders made before ``--annotations`` existed took: the first in name order."""
    found = _annotation_files(root)
    return found[0] if found else None


def has_human_segmentations(root: Path) -> bool:
    """Whether ``root`` is a folder with human segmentations: BSDS500 ground truth or COCO annotations."""
    root = Path(root)
    return root.is_dir() and ((root / "groundTruth").is_dir() or bool(_annotation_files(root)))


def find_annotations(root: Path, named: Path | None = None) -> Path | None:
    """The COCO instances file that gives the photos under ``root`` their human segmentations:
    ``named`` if given, else the only ``annotations/*.json`` of the folder, else None. Several
    files and none named is an error listing them, as picking one silently could label the photos
    with the wrong annotations."""
    if named is not None:
        return Path(named)
    found = _annotation_files(root)
    if len(found) > 1:
        raise ConfigError(
            f"--refs {root} has {len(found)} COCO annotation files ({', '.join(p.name for p in found)}); "
            "name the one to use with --annotations FILE"
        )
    return found[0] if found else None


def discover_references(root: Path, annotations: Path | None = None, *, coco: bool = True) -> list[Reference]:
    """Reference photos under ``root``: a BSDS500 folder (with ground truth), a COCO folder (with
    its annotation file, see :func:`find_annotations`), any folder of images, or a single image
    file. ``coco=False`` attaches no COCO annotations (automatic ROIs need none)."""
    root = Path(root)
    coco_file = find_annotations(root, annotations) if coco else None
    if root.is_file():
        return [Reference(_ref_id(Path(root.name)), root, coco=coco_file)]
    if not root.is_dir():
        raise ConfigError(f"--refs {root} is neither an image nor a folder")
    images = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file() and "groundTruth" not in p.parts
    )
    if (root / "groundTruth").is_dir():
        images = [p for p in images if p.parts[len(root.parts)] == "images"]
    if not images:
        raise ConfigError(f"--refs {root} holds no images ({', '.join(SUPPORTED_SUFFIXES)})")
    refs = []
    for p in images:
        rel = p.relative_to(root)
        gt = None
        if (root / "groundTruth").is_dir():
            cand = root / "groundTruth" / Path(*rel.parts[1:]).with_suffix(".mat")
            gt = cand if cand.is_file() else None
        refs.append(Reference(_ref_id(rel), p, gt, coco_file))
    return refs


def human_regions(ref: Reference) -> list[Roi]:
    """The human segments of a reference: its BSDS500 ground truth, else its COCO annotations, else none."""
    if ref.gt is not None:
        return bsds_regions(ref.gt)
    if ref.coco is not None:
        return coco_regions(ref.coco, ref.path.name)
    return []
