"""The dataset schema: level words, score thresholds, records, the per-ROI prediction and JSONL shards.

Synthesis writes these records, training reads them, evaluation reads them. The Assessor and the
evaluation baselines answer with :class:`RegionPrediction`, which eval, serve, batch and reports
read. Level words and thresholds live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import SchemaError

# Records are split by source photo, so a test photo is never seen in training (any folder, any tool).
SPLITS = ("train", "val", "test")


def item_seed(seed: int, *keys: object) -> int:
    """A 32-bit seed from ``seed`` and ``keys`` (stable across runs, machines and Python versions)."""
    h = hashlib.sha256("|".join(map(str, (seed, *keys))).encode()).digest()
    return int.from_bytes(h[:4], "little")


def assign_split(ref_id: str, fractions: Sequence[float], seed: int) -> str:
    """The split of source photo ``ref_id`` for ``fractions`` (train, val, test) and ``seed``."""
    u = item_seed(seed, "split", ref_id) / 2**32
    acc = 0.0
    for name, f in zip(SPLITS, fractions, strict=True):
        acc += f
        if u < acc:
            return name
    return SPLITS[-1]


SCHEMA_VERSION = 1

DISTORTION_TYPES: tuple[str, ...] = ("blur", "colorfulness", "compression", "contrast", "exposure", "noise")
QUALITY_LEVELS: tuple[str, ...] = ("bad", "poor", "fair", "good", "excellent")
IMPORTANCE_LEVELS: tuple[str, ...] = ("unimportant", "minor", "normal", "important", "essential")
SEVERITY_LEVELS: tuple[str, ...] = ("slight", "mild", "moderate", "severe", "extreme")
TASKS: tuple[str, ...] = ("quality", "importance", "distortion")


def _is_fraction(value: object) -> bool:
    """A real number in [0, 1] (NaN fails the comparison)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= value <= 1.0


@dataclass(frozen=True)
class Thresholds:
    """Cut points that turn scores in [0, 1] into the five level words.

    ``quality`` and ``importance`` cut their own scores; ``severity`` cuts the damage
    ``1 - quality`` of a region; ``visible`` is the smallest damage that counts as a distortion
    at all (below it the region is labelled as having no obvious distortion). Defaults come from
    the calibration described in docs/labels.md and are stored in every dataset card.
    """

    quality: tuple[float, float, float, float] = (0.50, 0.64, 0.77, 0.87)
    importance: tuple[float, float, float, float] = (0.015, 0.05, 0.14, 0.30)
    severity: tuple[float, float, float, float] = (0.14, 0.24, 0.36, 0.50)
    visible: float = 0.025

    def __post_init__(self) -> None:
        for name in ("quality", "importance", "severity"):
            cuts = getattr(self, name)
            if (
                len(cuts) != 4
                or not all(_is_fraction(c) for c in cuts)
                or any(b <= a for a, b in zip(cuts, cuts[1:], strict=False))
            ):
                raise SchemaError(
                    f"thresholds.{name} must be 4 increasing finite numbers in [0, 1], got {list(cuts)!r}"
                )
        if not _is_fraction(self.visible):
            raise SchemaError(f"thresholds.visible must be a finite number in [0, 1], got {self.visible!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Thresholds:
        return cls(
            quality=tuple(d["quality"]),
            importance=tuple(d["importance"]),
            severity=tuple(d["severity"]),
            visible=float(d["visible"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


DEFAULT_THRESHOLDS = Thresholds()


def level_index(score: float, cuts: Sequence[float]) -> int:
    """Index 0..4 of ``score`` among four increasing cut points."""
    return sum(1 for c in cuts if score >= c)


def quality_level(score: float, th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    return QUALITY_LEVELS[level_index(score, th.quality)]


def importance_level(score: float, th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    return IMPORTANCE_LEVELS[level_index(score, th.importance)]


def severity_level(damage: float, th: Thresholds = DEFAULT_THRESHOLDS) -> str:
    return SEVERITY_LEVELS[level_index(damage, th.severity)]


@dataclass
class DistortionLabel:
    """One distortion present in a region, with its strength in that region."""

    type: str
    severity: float  # damage 1 - quality caused in this region, in [0, 1]
    severity_level: str
    subtype: str | None = None

    def __post_init__(self) -> None:
        if self.type not in DISTORTION_TYPES:
            raise SchemaError(f"distortion type {self.type!r} is not one of {DISTORTION_TYPES}")
        if self.severity_level not in SEVERITY_LEVELS:
            raise SchemaError(f"severity level {self.severity_level!r} is not one of {SEVERITY_LEVELS}")


@dataclass
class RoiRecord:
    """One labelled region of one distorted image."""

    id: str
    rle: dict[str, Any]
    bbox: list[int]  # x, y, w, h in pixels
    area: int
    source: str  # where the region came from, e.g. "bsds:gt2:seg7", "coco:ann1234", "auto:object"
    quality: float | None = None
    quality_level: str | None = None
    importance: float | None = None
    importance_level: str | None = None
    distortions: list[DistortionLabel] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoiRecord:
        d = dict(d)
        d["distortions"] = [DistortionLabel(**x) for x in d.get("distortions", [])]
        return cls(**d)


@dataclass
class SampleRecord:
    """One distorted image with its regions, labels and instruction conversations."""

    id: str
    image: str  # path relative to the dataset folder
    reference: str  # reference image path as given to the synthesiser
    width: int
    height: int
    distortion: dict[str, Any]  # family, subtype, setting, num_settings, params, scope
    rois: list[RoiRecord]
    conversations: list[dict[str, Any]] = field(default_factory=list)
    split: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleRecord:
        try:
            d = dict(d)
            d["rois"] = [RoiRecord.from_dict(r) for r in d["rois"]]
            return cls(**d)
        except (KeyError, TypeError) as e:
            raise SchemaError(f"record {d.get('id', '?')!r} does not follow the schema: {e}") from e


# --------------------------------------------------------------------------- predictions


@dataclass
class DistortionPrediction:
    """What a predictor says about one distortion type in a region."""

    type: str
    confidence: float | None = None  # P(the answer names this type)
    present: bool = True  # the Assessor lists every type with this decision; baselines only present ones
    severity_level: str | None = None
    severity: float | None = None  # 0 (slight) .. 1 (extreme)
    severity_probs: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.type not in DISTORTION_TYPES:
            raise SchemaError(f"predicted distortion type {self.type!r} is not one of {DISTORTION_TYPES}")
        if self.severity_level is not None and self.severity_level not in SEVERITY_LEVELS:
            raise SchemaError(f"predicted severity {self.severity_level!r} is not one of {SEVERITY_LEVELS}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DistortionPrediction:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# Fields written only when set: evaluation's, never part of what the Assessor returns.
EVALUATION_FIELDS = ("quality_uncalibrated", "importance_uncalibrated", "raw")
# Keys of earlier prediction files and saved evaluation outputs, read under their current names.
LEGACY_KEYS = {"roi": "name", "score": "quality_uncalibrated", "importance_score": "importance_uncalibrated"}


@dataclass
class RegionPrediction:
    """What a predictor says about one region: the per-ROI JSON of ``seagull assess``, batch JSONL and
    the REST API, and what evaluation scores (model and baselines alike).

    ``quality``/``importance`` are in [0, 1] (higher = better quality / more important), None when
    not answered (NaN is read as no answer). ``distortions`` None means not answered; evaluation counts
    the ``present`` ones (none present = clean). Baselines give ``*_uncalibrated`` scores (their own
    scale, oriented like the labels) that evaluation calibrates into ``quality``/``importance``, and
    keep their own numbers in ``raw``.
    """

    name: str
    bbox: tuple[int, int, int, int] | None = None  # x, y, w, h
    area: int | None = None
    quality: float | None = None
    quality_level: str | None = None
    quality_probs: dict[str, float] | None = None
    importance: float | None = None
    importance_level: str | None = None
    importance_probs: dict[str, float] | None = None
    distortions: list[DistortionPrediction] | None = None
    answers: dict[str, str] = field(default_factory=dict)  # generated text (text=True)
    parsed: dict[str, Any] = field(default_factory=dict)  # strict parses of ``answers``
    quality_uncalibrated: float | None = None
    importance_uncalibrated: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("quality", "importance"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(float(v)):
                setattr(self, name, None)
        if self.quality_level is not None and self.quality_level not in QUALITY_LEVELS:
            raise SchemaError(
                f"ROI {self.name}: quality level {self.quality_level!r} is not one of {QUALITY_LEVELS}"
            )
        if self.importance_level is not None and self.importance_level not in IMPORTANCE_LEVELS:
            raise SchemaError(
                f"ROI {self.name}: importance level {self.importance_level!r} is not one of {IMPORTANCE_LEVELS}"
            )

    @property
    def present_distortions(self) -> list[DistortionPrediction] | None:
        return None if self.distortions is None else [d for d in self.distortions if d.present]

    @property
    def type_set(self) -> list[str] | None:
        present = self.present_distortions
        return None if present is None else sorted({d.type for d in present})

    @property
    def severity_pairs(self) -> list[tuple[str, str]] | None:
        present = self.present_distortions
        if present is None:
            return None
        return sorted({(d.type, d.severity_level) for d in present if d.severity_level is not None})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.bbox is not None:
            d["bbox"] = list(self.bbox)
        for k in EVALUATION_FIELDS:
            if d[k] is None or d[k] == {}:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionPrediction:
        d = {LEGACY_KEYS.get(k, k): v for k, v in d.items()}
        d.setdefault("name", "")
        dist = d.get("distortions")
        d["distortions"] = None if dist is None else [DistortionPrediction.from_dict(x) for x in dist]
        if d.get("bbox") is not None:
            d["bbox"] = tuple(d["bbox"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# --------------------------------------------------------------------------- shards


def _umask() -> int:
    """The process umask (read by setting it, briefly to the strictest value, and restoring it)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file next to ``path`` with the permissions a plain ``open`` would give it:
    ``mkstemp`` makes it 0600, which would hide the finished file from the other users of a
    shared folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old or the complete new content."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_shard(path: Path, records: Iterable[SampleRecord | dict[str, Any]]) -> None:
    lines = [json.dumps(r.to_dict() if isinstance(r, SampleRecord) else r) for r in records]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def strict_json(text: str | bytes, where: str) -> Any:
    """``text`` parsed as JSON, refusing NaN and Infinity (which Python's parser takes by default):
    SchemaError naming ``where`` (a file, or a file and line) for bytes that are not UTF-8, for text
    that is not JSON and for non-finite numbers."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SchemaError(
                f"{where} is not UTF-8 text (byte {text[e.start]:#04x} at column {e.start + 1}); "
                "re-encode it as UTF-8"
            ) from e
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise SchemaError(f"{where} is not valid JSON ({e.msg})") from e
    except ValueError as e:
        raise SchemaError(f"{where}: {e}; write the value as a finite number or null") from e


def parse_shard_line(line: bytes, path: Path, n: int) -> dict[str, Any] | None:
    """Line ``n`` of shard ``path`` as a record dict (None for a blank line); SchemaError otherwise."""
    if not line.strip():
        return None
    d = strict_json(line, f"{path}:{n}")
    if not isinstance(d, dict):
        raise SchemaError(f"{path}:{n} is not a JSON object (a record is one object per line)")
    return d


def read_shard(path: Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            d = parse_shard_line(line, path, n)
            if d is not None:
                yield d


def shard_paths(dataset_dir: Path) -> list[Path]:
    return sorted((Path(dataset_dir) / "shards").glob("*.jsonl"))


def iter_records(dataset_dir: Path, split: str | None = None) -> Iterator[SampleRecord]:
    """Every record of a dataset folder (optionally one split), in shard order."""
    paths = shard_paths(dataset_dir)
    if not paths:
        raise SchemaError(
            f"{dataset_dir} has no shards/*.jsonl: is it a dataset folder written by `seagull synth`?"
        )
    for p in paths:
        for d in read_shard(p):
            rec = SampleRecord.from_dict(d)
            if split is None or rec.split == split:
                yield rec


def read_card(dataset_dir: Path) -> dict[str, Any]:
    p = Path(dataset_dir) / "dataset.json"
    if not p.is_file():
        raise SchemaError(f"{dataset_dir} has no dataset.json card: write it with `seagull synth`")
    try:
        card = strict_json(p.read_bytes(), str(p))
    except OSError as e:
        raise SchemaError(f"{p} cannot be read ({e.strerror or e})") from e
    if not isinstance(card, dict):
        raise SchemaError(f"{p} is not a JSON object; write the card with `seagull synth`")
    return card


def dataset_thresholds(dataset_dir: Path) -> Thresholds:
    return Thresholds.from_dict(read_card(dataset_dir)["thresholds"])
