"""What ``seagull synth`` renders: :class:`SynthConfig`, the single source of the command's options,
and the label scheme's constants (thresholds and visibility gains of scheme v2).

Kept light (no image stack, no torch) so that the command line is built from these fields at start-up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..labels import DEFAULT_THRESHOLDS, DISTORTION_TYPES, NUM_SETTINGS, Thresholds
from ..options import cli, comma_list, fraction, int_range, nonnegative_int, positive_int

# Label scheme "v2" (docs/labels.md, "Are clearly visible distortions labelled good?"): ROI damage
# corrected for the share of its bounding box the mask fills, and cut points anchored to visibility:
# excellent = no visible damage, good = just visible (settings 1-2), clearly visible = fair or worse.
LABEL_SCHEMES = ("v1", "v2")
VISIBILITY_THRESHOLDS = Thresholds(
    quality=(0.62, 0.80, 0.93, 0.975),
    importance=DEFAULT_THRESHOLDS.importance,
    severity=(0.07, 0.20, 0.38, 0.55),
    visible=0.025,
)
# v2's per-sub-type visibility gain on ROI damage (1 - quality), after the fill correction. The
# full-reference metric rates some sub-types leniently on ROIs: at settings 4-6, which are clearly
# visible for every family (checked by eye, docs/labels.md section 9), WebP, colour shift and impulse
# noise were still labelled good for a third of the ROIs. Rule: gain = 0.07 / (10th percentile of the
# damage at settings 4-6), clipped to [1, 3], so that at most about a tenth of those ROIs stay good;
# measured on the 4 calibration photos (kodim01/05/13/21, section 9); sub-types not listed keep 1.
VISIBILITY_GAIN = {
    "color_shift": 3.0,
    "saturation_down": 1.53,
    "saturation_up": 1.21,
    "webp": 1.55,
    "impulse": 2.13,
    "shot": 1.15,
    "sensor": 1.06,
}


@dataclass
class SynthConfig:
    """What ``seagull synth`` renders; every field with ``cli(...)`` metadata is one of its options."""

    refs: Path = field(
        metadata=cli("folder of reference photos (plain, BSDS500 or COCO layout) or one image", type=Path)
    )
    out: Path = field(metadata=cli("dataset folder to write (resumed if it exists)", type=Path))
    rois: str = field(
        default="auto",
        metadata=cli("automatic regions, human segmentations, or both", choices=("auto", "gt", "both")),
    )
    # COCO instances JSON; None = the folder's own annotations/*.json
    annotations: Path | None = field(
        default=None,
        metadata=cli(
            "COCO instances JSON of the photos (default: the only annotations/*.json of --refs)",
            type=Path,
            metavar="FILE",
        ),
    )
    settings: int = field(
        default=10,
        metadata=cli("settings per family, spread over the 20-step ladder (default 10)", type=positive_int),
    )
    # The strongest setting rendered (lower: strengths of real photos).
    strongest: int = field(
        default=NUM_SETTINGS,
        metadata=cli(
            "spread --settings over 1..S instead of the whole 20-step ladder (default 20)",
            flag="--strongest-setting",
            type=positive_int,
            metavar="S",
        ),
    )
    families: tuple[str, ...] = field(
        default=DISTORTION_TYPES,
        metadata=cli(
            "comma-separated subset of blur,colorfulness,compression,contrast,exposure,noise", type=comma_list
        ),
    )
    seed: int = field(default=0, metadata=cli("seed of every random choice (default 0)", type=int_range()))
    max_rois: int = field(default=6, metadata=cli("ROIs per reference (default 6)", type=positive_int))
    # References are downscaled to this working size first.
    max_side: int = field(
        default=512,
        metadata=cli(
            "working size: longer side of the references (default 512; 0 = keep)", type=nonnegative_int
        ),
    )
    # Also emit the undistorted reference (labels: excellent, no distortion).
    clean: bool = field(
        default=True, metadata=cli("do not emit the undistorted reference as a sample", flag="--no-clean")
    )
    local_fraction: float = field(
        default=0.0, metadata=cli("share of images distorted inside one ROI only", type=fraction)
    )
    # Share of items distorted everywhere except one ROI (the subject), like a defocused background
    # behind a sharp subject with blur; the seam is feathered by ``background_feather`` pixels.
    background_fraction: float = field(
        default=0.0,
        metadata=cli(
            "share of images distorted everywhere but one ROI (with blur: a defocused background)",
            type=fraction,
        ),
    )
    background_feather: float = 4.0
    # Share of items with up to ``regions_per_image`` disjoint ROIs distorted, each its own way (family
    # or strength), seams feathered by ``region_feather`` pixels, the rest untouched (synth/layouts.py).
    multi_fraction: float = field(
        default=0.0,
        metadata=cli(
            "share of images with several regions distorted, each its own way, the rest untouched",
            type=fraction,
        ),
    )
    regions_per_image: int = field(
        default=2,
        metadata=cli(
            "distorted regions of a --multi-fraction image (disjoint ROIs; default 2)", type=positive_int
        ),
    )
    region_feather: float = 4.0
    # Blur and noise as a camera makes them (seagull.camera) instead of the plain ones.
    camera: bool = field(
        default=False,
        metadata=cli(
            "camera-like blur (lens defocus, shake, soft downscale) and sensor noise, in linear light"
        ),
    )
    # Label scheme: v2 fill-, visibility-corrected and anchored; v1 as calibrated first.
    labels: str = field(
        default="v2",
        metadata=cli(
            "label scheme: v2 (default; fill- and visibility-corrected, visibility-anchored levels) or v1, "
            "the first calibration (the shipped seagull-tiny v1 corpus; docs/labels.md)",
            choices=LABEL_SCHEMES,
        ),
    )
    # Full-reference label metric; "" = the default.
    metric: str = field(
        default="", metadata=cli("full-reference label metric (default: the project's choice)")
    )
    thresholds: Thresholds = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    min_roi_frac: float = 0.01
    max_roi_frac: float = 0.7
    threads: int = 1  # torch threads per worker (the runner sets cores // workers; Ray tasks get 1)
    # Render only this many of the ladder's settings per (reference, family).
    settings_per_ref: int | None = field(
        default=None,
        metadata=cli("render only K of the settings per reference and family (seeded)", type=positive_int),
    )
    # Working size for the whole-image importance metric (speed).
    importance_max_side: int | None = field(
        default=None, metadata=cli("working size of the whole-image importance metric", type=positive_int)
    )

    def __post_init__(self) -> None:
        self.refs, self.out = Path(self.refs), Path(self.out)
        self.families = tuple(self.families)
        if not self.metric:
            from ..metrics.fr import DEFAULT_FR_METRIC  # torch: only when a config is built

            self.metric = DEFAULT_FR_METRIC
        if self.labels not in LABEL_SCHEMES:
            raise ConfigError(f"--labels must be one of {LABEL_SCHEMES}, got {self.labels!r}")
        if self.labels == "v2" and self.thresholds == DEFAULT_THRESHOLDS:
            self.thresholds = VISIBILITY_THRESHOLDS
        if self.rois not in ("auto", "gt", "both"):
            raise ConfigError(f"--rois must be auto, gt or both, got {self.rois!r}")
        if self.annotations is not None:
            self.annotations = Path(self.annotations)
            if self.rois == "auto":
                raise ConfigError(
                    f"--annotations {self.annotations} gives human segmentations, which only "
                    "--rois gt or both use; add one of them or leave --annotations out"
                )
            if not self.annotations.is_file():
                raise ConfigError(
                    f"--annotations {self.annotations} is not a file; name the COCO instances JSON "
                    "of the reference photos"
                )
        if not self.families:
            raise ConfigError(f"--families names no family; choose from {', '.join(DISTORTION_TYPES)}")
        bad = [f for f in self.families if f not in DISTORTION_TYPES]
        if bad:
            raise ConfigError(f"unknown distortion families {bad}; choose from {DISTORTION_TYPES}")
        if not 1 <= self.strongest <= NUM_SETTINGS:
            raise ConfigError(
                f"--strongest-setting must be between 1 and {NUM_SETTINGS}, got {self.strongest}"
            )
        if not 1 <= self.settings <= self.strongest:
            raise ConfigError(
                f"--settings must be between 1 and {self.strongest} (the strongest setting), got {self.settings}"
            )
        if self.max_rois < 1:
            raise ConfigError(f"--max-rois must be at least 1, got {self.max_rois}")
        if self.settings_per_ref is not None and not 1 <= self.settings_per_ref <= self.settings:
            raise ConfigError(
                f"--settings-per-ref must be between 1 and --settings ({self.settings}), got {self.settings_per_ref}"
            )
        for name in ("local_fraction", "background_fraction", "multi_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {v}")
        if self.local_fraction + self.background_fraction + self.multi_fraction > 1.0:
            raise ConfigError(
                f"--local-fraction ({self.local_fraction}), --background-fraction ({self.background_fraction}) "
                f"and --multi-fraction ({self.multi_fraction}) must sum to at most 1: an item is local, "
                "background, multi or global"
            )
        for name in ("background_feather", "region_feather"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 0 pixels, got {v}")
        if self.regions_per_image < 1:
            raise ConfigError(f"--regions-per-image must be at least 1, got {self.regions_per_image}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ConfigError(f"split fractions must sum to 1, got {self.split_fractions}")

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a run to resume into an existing folder."""
        d = asdict(self)
        d.pop("out")
        d.pop("threads")
        d["refs"] = str(self.refs)
        d["thresholds"] = self.thresholds.to_dict()
        d["families"] = list(self.families)
        d["split_fractions"] = list(self.split_fractions)
        # Options added later are left out while unused, so folders written before them still resume.
        if not self.background_fraction:
            d.pop("background_fraction")
            d.pop("background_feather")
        if not self.multi_fraction:
            for k in ("multi_fraction", "regions_per_image", "region_feather"):
                d.pop(k)
        if not self.camera:
            d.pop("camera")
        if self.labels == "v1":
            d.pop("labels")  # folders from before the option existed are v1 and have no such key
        else:  # the gains change v2's stored scores: a folder must not mix two sets of them
            d["visibility_gain"] = dict(VISIBILITY_GAIN)
        if self.strongest == NUM_SETTINGS:
            d.pop("strongest")
        from ..references import implicit_annotations

        if self.annotations is None or _same_file(self.annotations, implicit_annotations(self.refs)):
            d.pop("annotations")  # as above; and naming the file used implicitly changes nothing
        else:
            d["annotations"] = str(self.annotations)
        return d


def _same_file(a: Path, b: Path | None) -> bool:
    return b is not None and a.resolve() == b.resolve()
