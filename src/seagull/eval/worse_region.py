"""The region suite: which region of a photo looks worse?

From a folder of clean photos, each photo gets one region made worse, the way an editor or a camera
damages part of a picture: the whole photo is degraded (one family at one strength, see
:data:`DEGRADATIONS`; blur and noise camera-like, in linear light, :mod:`seagull.camera`) and pasted
inside the region only (with a soft, feathered border for the ``seam`` layout). Regions
(:func:`photo_layouts`):

* ``half_lr`` / ``half_tb``: the left or right / top or bottom half (side drawn per photo);
* ``auto``: a region of the weight-free automatic proposer (:func:`seagull.proposals.every_region`)
  covering 8-45 % of the photo;
* ``seam``: an ellipse pasted with a feathered border (alpha ramps over 4 % of the shorter side);
* ``human``: where the folder has human segmentations (a BSDS500 or COCO folder, see
  :mod:`seagull.references`), the largest human segment covering 10-50 % of the photo.

Each composite is shown to every predictor with three ROIs: the worse region, the untouched rest of
the photo, and another untouched region (a ninth-of-the-photo grid cell outside the worse region).
A predictor is right on a pair when it rates the worse region lower (ties 1/2). The full-reference
label metric (:mod:`seagull.metrics.fr`) confirms each composite: a region whose FR damage is below
the pair margin is not visibly worse and its pairs are dropped (and counted). The same three ROIs
on the untouched photo give ``clean_prior``: how often a predictor already rates the chosen region
lower with no damage at all (0.5 = no bias from the content of the region).

Predictors that name distortions are also scored on the type they give the worse region
(``type_top``: the most confident type is the family; ``type_present``: the family is among the
types) and on calling the untouched other region clean (``other_clean``).

Everything is seeded by the photo's file name, so a run is deterministic; raw outputs are saved in
the run journal as they are made, so an interrupted run resumes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import camera
from ..distortions import (
    FAMILIES,
    NUM_SETTINGS,
    DistortionResult,
    apply_distortion,
    apply_in_mask,
    choose_subtype,
)
from ..errors import SeagullError
from ..imageio import fit_longest_side, load_image, resize_mask, seeded_rng
from ..metrics import fr
from ..proposals import every_region
from ..references import (
    Reference,
    discover_references,
    has_human_segmentations,
    human_regions,
)
from ..region_prediction import RegionPrediction
from .baselines import RoiPredictor
from .bench import list_images
from .journal import RunJournal, progress_bar
from .pairs import (
    DEFAULT_MARGIN,
    PairOutcome,
    PairSummary,
    ci_cell,
    order_outcome,
    strength_band,
    summarize,
)
from .suites import SuiteResult, quality_of

MAX_SIDE = 512  # photos are brought to the corpus's working size first
STRENGTHS: tuple[int, ...] = (7, 13, 20)  # settings of the 20-step ladders: weak, medium, strong
MIN_PHOTO_SIDE = 96  # grid cells of a ninth of the photo stay at least 32 px
MIN_REGION_SIDE = 32
SEAM_FEATHER = 0.04  # of the shorter side
LAYOUTS: tuple[str, ...] = ("half_lr", "half_tb", "auto", "seam")  # the layouts every photo may have
HUMAN_LAYOUT = "human"  # the layout of photos with human segmentations
HUMAN_SHARE = (0.10, 0.50)  # of the photo a human segment covers to be a worse region
NO_REGION = {
    "auto": "no automatic region covers 8-45 % of the photo",
    HUMAN_LAYOUT: "no human segment covers 10-50 % of the photo",
}
FR_KEY = "fr_label"  # the journal's entries for the full-reference check of each composite


# --------------------------------------------------------------------------- degradations
@dataclass(frozen=True)
class Degraded:
    image: np.ndarray  # the whole photo degraded
    name: str  # what was applied, e.g. "blur/gaussian"


Degrade = Callable[[np.ndarray, int, str], Degraded]  # (photo, setting, photo key) -> whole photo


Apply = Callable[[np.ndarray, str, int, str], DistortionResult]  # (image, family, setting, sub-type)


def ladder(family: str, apply: Apply = apply_distortion, subtypes: tuple[str, ...] | None = None) -> Degrade:
    """``family`` at a ladder setting through ``apply``, the sub-type drawn per photo among ``subtypes``
    (default: the family's own in :mod:`seagull.distortions`)."""

    def degrade(photo: np.ndarray, setting: int, key: str) -> Degraded:
        subtype = choose_subtype(family, key, subtypes=subtypes)
        return Degraded(apply(photo, family, setting, subtype).image, f"{family}/{subtype}")

    return degrade


def camera_ladder(family: str) -> Degrade:
    """``family`` the way a camera makes it (:mod:`seagull.camera`: in linear light, highlights that
    bloom), the variant drawn per photo among ``camera.CAMERA_FAMILIES[family]``; the random draws (the
    shake path, the noise) come from a generator seeded by the photo's key, fresh at every call, so
    they are the same at every strength and the photo's ladder is monotone. No camera JPEG: it would
    add compression damage inside the region only (the rest of the photo must stay untouched)."""
    variants = camera.CAMERA_FAMILIES[family]

    def degrade(photo: np.ndarray, setting: int, key: str) -> Degraded:
        variant = choose_subtype(family, key, subtypes=variants)
        image = camera.apply(variant, setting, photo, seeded_rng("regions", "camera", family, variant, key))
        return Degraded(image, f"{family}/{variant}")

    return degrade


# Family -> how a region of that family is made worse. Blur and noise are the camera-like ones (a lens
# or a shaken camera blurs light, sensor noise grows with the signal, docs/evaluation.md); the other
# families are edits of the sRGB values (or an encoder's), which the ladders of
# :mod:`seagull.distortions` already are.
DEGRADATIONS: dict[str, Degrade] = {
    "blur": camera_ladder("blur"),
    "colorfulness": ladder("colorfulness"),
    "compression": ladder("compression"),
    "contrast": ladder("contrast"),
    "exposure": ladder("exposure"),
    "noise": camera_ladder("noise"),
}
assert tuple(DEGRADATIONS) == tuple(FAMILIES)


# --------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class Layout:
    """Where the damage goes: ``worse`` (pasted with ``feather`` px), ``rest`` = the untouched
    complement, ``other`` = an untouched region away from it."""

    name: str
    worse: np.ndarray
    rest: np.ndarray
    other: np.ndarray
    feather: float = 0.0

    @property
    def masks(self) -> list[np.ndarray]:
        return [self.worse, self.rest, self.other]


def _bbox_min_side(m: np.ndarray) -> int:
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    return 0 if rows.size == 0 else int(min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))


def _other_region(worse: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A grid cell (a ninth of the photo) that the worse region leaves at least 90 % untouched,
    minus the worse region; drawn by ``rng``; None if there is no such cell."""
    h, w = worse.shape
    cells = []
    for i in range(3):
        for j in range(3):
            m = np.zeros((h, w), bool)
            m[i * h // 3 : (i + 1) * h // 3, j * w // 3 : (j + 1) * w // 3] = True
            if (m & worse).sum() <= 0.1 * m.sum():
                cells.append(m & ~worse)
    return cells[int(rng.integers(len(cells)))] if cells else None


def _largest_segment(segments: Sequence[np.ndarray]) -> np.ndarray | None:
    """The largest of ``segments`` covering :data:`HUMAN_SHARE` of the photo, or None."""
    low, high = HUMAN_SHARE
    fitting = [m for m in segments if low <= m.mean() <= high]
    return max(fitting, key=lambda m: int(m.sum())) if fitting else None


def _worse_regions(
    photo: np.ndarray, rng: np.random.Generator, segments: Sequence[np.ndarray] | None = None
) -> dict[str, tuple[np.ndarray | None, float]]:
    """The worse region and its feather of each layout (None where the photo offers none); the
    ``human`` layout only with the photo's human ``segments``."""
    h, w = photo.shape[:2]
    half_lr = np.zeros((h, w), bool)
    half_lr[:, : w // 2] = True
    half_tb = np.zeros((h, w), bool)
    half_tb[: h // 2] = True
    if rng.random() < 0.5:
        half_lr = ~half_lr
    if rng.random() < 0.5:
        half_tb = ~half_tb
    autos = [
        r.mask
        for r in every_region(photo)
        if 0.08 <= r.mask.mean() <= 0.45 and _bbox_min_side(r.mask) >= MIN_REGION_SIDE
    ]
    auto = autos[int(rng.integers(len(autos)))] if autos else None
    cy, cx = rng.uniform(0.4, 0.6) * h, rng.uniform(0.4, 0.6) * w
    yy, xx = np.mgrid[0:h, 0:w]
    seam = ((yy - cy) / (0.25 * h)) ** 2 + ((xx - cx) / (0.25 * w)) ** 2 <= 1.0
    regions = {
        "half_lr": (half_lr, 0.0),
        "half_tb": (half_tb, 0.0),
        "auto": (auto, 0.0),
        "seam": (seam, SEAM_FEATHER * min(h, w)),
    }
    if segments is not None:  # last: the draws of the other layouts stay as they are without it
        regions[HUMAN_LAYOUT] = (_largest_segment(segments), 0.0)
    return regions


def photo_layouts(
    photo: np.ndarray, key: str, segments: Sequence[np.ndarray] | None = None
) -> tuple[list[Layout], list[str]]:
    """The layouts a photo allows, and a reason for each one it does not (seeded by ``key``); with
    the photo's human ``segments`` (masks at the photo's size), the ``human`` layout too."""
    h, w = photo.shape[:2]
    if min(h, w) < MIN_PHOTO_SIDE:
        return [], [f"{key}: {w}x{h} is too small for the layouts (shorter side under {MIN_PHOTO_SIDE} px)"]
    rng = seeded_rng("regions", key)
    layouts, skipped = [], []
    for name, (worse, feather) in _worse_regions(photo, rng, segments).items():
        if worse is None:
            skipped.append(f"{key}/{name}: {NO_REGION[name]}")
            continue
        other = _other_region(worse, rng)
        if other is None:
            skipped.append(f"{key}/{name}: no untouched ninth of the photo outside the region")
            continue
        layouts.append(Layout(name, worse, ~worse, other, feather))
    return layouts, skipped


def composite(photo: np.ndarray, degraded: np.ndarray, layout: Layout) -> np.ndarray:
    """The photo with the degraded pixels pasted inside the worse region (feathered if asked)."""
    return apply_in_mask(photo, degraded, layout.worse, feather=layout.feather)


def degraded_versions(
    photo: np.ndarray, key: str, strengths: Sequence[int] = STRENGTHS
) -> Iterator[tuple[str, int, Degraded]]:
    """(family, setting, degraded whole photo) for every family and strength."""
    for family, degrade in DEGRADATIONS.items():
        for s in strengths:
            yield family, s, degrade(photo, s, key)


# --------------------------------------------------------------------------- running
def _said(out: RegionPrediction) -> list[tuple[str, float]] | None:
    """(type, confidence) of each distortion a predictor names; None if it names none by design."""
    d = out.present_distortions
    return None if d is None else [(x.type, float(x.confidence or 0.0)) for x in d]


@dataclass
class _Tally:
    """One predictor's judged pairs and type answers."""

    pairs: list[PairOutcome]
    prior: list[PairOutcome]
    type_top: list[tuple[str, bool]]  # (family, right)
    type_present: list[tuple[str, bool]]
    other_clean: list[bool]


def _pairs_of(outs: list[RegionPrediction], photo: str, strata: dict[str, str]) -> list[PairOutcome]:
    """The worse region (ROI 0) against the rest (ROI 1) and against the other region (ROI 2)."""
    q = [quality_of(o) for o in outs]
    pairs = []
    for comparison, k in (("rest", 1), ("other", 2)):
        r = order_outcome(q[0], q[k])
        if r is not None:
            pairs.append(PairOutcome(photo, r, tuple({**strata, "comparison": comparison}.items())))
    return pairs


def _judge(tally: _Tally, outs: list[RegionPrediction], photo: str, strata: dict[str, str]) -> None:
    tally.pairs += _pairs_of(outs, photo, strata)
    said, said_other = _said(outs[0]), _said(outs[2])
    if said is not None:
        family = strata["family"]
        top = max(said, key=lambda x: x[1])[0] if said else "clean"
        tally.type_top.append((family, top == family))
        tally.type_present.append((family, family in {t for t, _ in said}))
    if said_other is not None:
        tally.other_clean.append(not said_other)


def _fr_damage(
    journal: RunJournal, key: str, photo: np.ndarray, comp: np.ndarray, worse: np.ndarray
) -> float:
    e = journal.get(FR_KEY, key)
    if e is None:
        q = fr.roi_quality(photo, comp, [worse])[0]
        e = journal.add(FR_KEY, key, outputs=[RegionPrediction("worse", quality=float(q))])
    return 1.0 - e["outputs"][0].quality


def _photos(root: Path, limit: int | None) -> list[tuple[Path, Reference | None]]:
    """The photos of ``root``, each with its reference where the folder has human segmentations
    (a BSDS500 or COCO folder: then its photos are the references, label maps are not photos)."""
    if has_human_segmentations(root):
        return [(r.path, r) for r in discover_references(root)[:limit]]
    return [(p, None) for p in list_images(root, limit)]


def _segments(ref: Reference | None, photo: np.ndarray) -> list[np.ndarray] | None:
    """The human segments of the photo's reference at the photo's size; None without a reference."""
    if ref is None:
        return None
    masks = (resize_mask(r.mask, photo.shape[:2]) for r in human_regions(ref))
    return [m for m in masks if m.any()]


def run_regions(
    root: Path,
    predictors: Sequence[RoiPredictor],
    limit: int | None = None,
    journal: RunJournal | None = None,
    progress: bool = False,
    bootstrap: int = 200,
    margin: float = DEFAULT_MARGIN,
    max_side: int | None = MAX_SIDE,
    strengths: Sequence[int] = STRENGTHS,
) -> SuiteResult:
    """Every predictor on every (photo, layout, family, strength) composite and on the clean photo."""
    journal = journal if journal is not None else RunJournal(None, {})
    photos = _photos(Path(root), limit)
    labelled = any(ref is not None for _, ref in photos)
    layout_names = [*LAYOUTS, HUMAN_LAYOUT] if labelled else list(LAYOUTS)
    tallies = {p.name: _Tally([], [], [], [], []) for p in predictors}
    failures, skipped, invisible, n_photos = [], [], [], 0
    for path, ref in progress_bar(len(photos), "regions", progress, photos):
        name = path.relative_to(root).as_posix() if Path(root).is_dir() else path.name
        try:
            photo = fit_longest_side(load_image(path), max_side)
        except SeagullError as e:  # an unreadable photo is reported; the run goes on
            failures.append(f"{name}: {e}")
            continue
        try:
            segments = _segments(ref, photo)
        except SeagullError as e:  # unreadable segments: the photo keeps its other layouts
            skipped.append(f"{name}/{HUMAN_LAYOUT}: {e}")
            segments = None
        tag = f"{name}@{photo.shape[1]}x{photo.shape[0]}"
        layouts, why = photo_layouts(photo, name, segments)
        skipped += why
        if not layouts:
            continue
        n_photos += 1
        for lay in layouts:
            for p in predictors:
                outs = _ask(journal, p, f"{tag}|{lay.name}|clean", photo, lay.masks, failures)
                if outs is not None:
                    tallies[p.name].prior += _pairs_of(outs, name, {"layout": lay.name})
        for family, setting, deg in degraded_versions(photo, name, strengths):
            for lay in layouts:
                key = f"{tag}|{lay.name}|{deg.name}|s{setting:02d}"
                comp = composite(photo, deg.image, lay)
                damage = _fr_damage(journal, key, photo, comp, lay.worse)
                if damage < margin:
                    invisible.append(f"{family}/s{setting:02d}")
                    continue
                strata = {
                    "family": family,
                    "strength": strength_band(setting, NUM_SETTINGS),
                    "layout": lay.name,
                }
                for p in predictors:
                    outs = _ask(journal, p, key, comp, lay.masks, failures)
                    if outs is not None:
                        _judge(tallies[p.name], outs, name, strata)
    info = {
        "data": str(root),
        "photos": n_photos,
        "max_side": max_side,
        "strengths": {strength_band(s, NUM_SETTINGS): s for s in strengths},
        "layouts": layout_names,
        "margin": margin,
        "bootstrap": bootstrap,
        "not_visible": len(invisible),
        "failures": failures,
        "skipped": skipped,
    }
    res = _result(tallies, margin, bootstrap, info)
    if invisible:
        counts = ", ".join(f"{k} {n}" for k, n in sorted(Counter(invisible).items()))
        res.notes.append(f"not visibly worse (FR damage under {margin:g}), pairs dropped: {counts}")
    return res


def _ask(
    journal: RunJournal,
    p: RoiPredictor,
    key: str,
    image: np.ndarray,
    masks: list[np.ndarray],
    failures: list[str],
) -> list[RegionPrediction] | None:
    """The predictor's saved or new outputs; a failure on one item is recorded and the run goes on."""
    try:
        return journal.predict(p, key, image, masks)
    except SeagullError as e:
        failures.append(f"{p.name} on {key}: {e}")
        return None


# --------------------------------------------------------------------------- the report
REGION_COLUMNS = [
    "predictor",
    "pairs",
    "pair_acc",
    "pair_acc_ci95",
    "vs_rest",
    "vs_other",
    *FAMILIES,
    "clean_prior",
    "type_top",
    "type_present",
    "other_clean",
]


def _share(xs: Sequence[bool]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _acc(s: PairSummary, key: str, value: str) -> float | None:
    a = s.by.get(key, {}).get(value)
    return None if a is None or a.n_pairs == 0 else a.accuracy


def _result(tallies: dict[str, _Tally], margin: float, bootstrap: int, info: dict[str, Any]) -> SuiteResult:
    keys = ("family", "strength", "layout", "comparison")
    rows, by_strength, by_layout, types = [], [], [], []
    for name, t in tallies.items():
        s = summarize(t.pairs, keys, margin, bootstrap)
        prior = summarize(t.prior, (), margin)
        pooled = s.pooled.accuracy if s.pooled.n_pairs else None
        rows.append(
            {
                "predictor": name,
                "pairs": s.pooled.n_pairs,
                "pair_acc": pooled,
                "pair_acc_ci95": ci_cell(s.pooled),
                "vs_rest": _acc(s, "comparison", "rest"),
                "vs_other": _acc(s, "comparison", "other"),
                **{f: _acc(s, "family", f) for f in FAMILIES},
                "clean_prior": prior.pooled.accuracy if prior.pooled.n_pairs else None,
                "type_top": _share([ok for _, ok in t.type_top]),
                "type_present": _share([ok for _, ok in t.type_present]),
                "other_clean": _share(t.other_clean),
            }
        )
        by_strength.append(
            {"predictor": name, **{b: _acc(s, "strength", b) for b in ("weak", "medium", "strong")}}
        )
        by_layout.append({"predictor": name, **{lay: _acc(s, "layout", lay) for lay in info["layouts"]}})
        if t.type_top:
            for f in FAMILIES:
                types.append(
                    {
                        "predictor": name,
                        "family": f,
                        "type_top": _share([ok for g, ok in t.type_top if g == f]),
                        "type_present": _share([ok for g, ok in t.type_present if g == f]),
                    }
                )
    res = SuiteResult(
        "regions",
        REGION_COLUMNS,
        rows,
        notes=list(_NOTES),
        info=info,
    )
    res.extra_tables["strength"] = (["predictor", "weak", "medium", "strong"], by_strength)
    res.extra_tables["layout"] = (["predictor", *info["layouts"]], by_layout)
    if types:
        res.extra_tables["type_by_family"] = (["predictor", "family", "type_top", "type_present"], types)
    return res


_NOTES = [
    "One region of each clean photo made worse (whole photo degraded, pasted inside the region; "
    "feathered for 'seam'), per family at settings 7, 13 and 20 of the 20-step ladders (weak, medium, strong); "
    "blur and noise camera-like (seagull.camera: lens defocus, shake or soft downscale; sensor noise, in linear light).",
    "pair_acc: share of pairs (worse region vs the untouched rest, and vs another untouched region) "
    "where the worse region is rated lower (ties 1/2); 95% bootstrap interval over photos. Baselines "
    "are ranked by their raw oriented score.",
    "clean_prior: the same pairs on the untouched photo (0.5 = the region's content alone gives no hint).",
    "type_top / type_present: the family is the most confident / among the types named for the worse "
    "region; other_clean: the untouched other region called clean. Only predictors that name distortions.",
]
