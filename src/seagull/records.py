"""The dataset records and their files: :class:`SampleRecord` (one distorted image) and
:class:`RoiRecord` (one labelled region), JSONL shards, and the dataset card (``dataset.json``).

Synthesis writes these records, training reads them, evaluation reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import SchemaError
from .fileio import atomic_write_text, strict_json
from .labels import DistortionLabel, Thresholds

SCHEMA_VERSION = 1


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


def write_shard(path: Path, records: Iterable[SampleRecord | dict[str, Any]]) -> None:
    lines = [json.dumps(r.to_dict() if isinstance(r, SampleRecord) else r) for r in records]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


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


# What a folder's ROIs can be asked about when its card does not say (a synthesised folder labels all)
ALL_LABEL_TASKS = ("quality", "importance", "distortion")


def card_label_tasks(card: dict[str, Any]) -> tuple[str, ...]:
    """The tasks a folder's ROIs are labelled for: the card's ``label_tasks`` (a human-rated folder of
    ``seagull data mos`` labels quality only), else :data:`ALL_LABEL_TASKS`."""
    return tuple(card.get("label_tasks") or ALL_LABEL_TASKS)


def card_shares_scale(card: dict[str, Any]) -> bool:
    """Whether the folder's quality labels share one scale across photos: a human opinion score
    (``seagull data mos`` writes the card's ``mos`` section) does; a synthesised label is relative to
    each reference photo and does not."""
    return isinstance(card.get("mos"), dict)


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
