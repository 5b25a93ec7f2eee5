"""``seagull data mos``: a human-rated image quality set (a folder of photos and a score file) as a
dataset folder in the project's schema, for training on people's scores and ``seagull eval --suite mos``.

Input: the photos, and the scores as CSV (columns named by options) or as MATLAB files read with
:func:`scipy.io.loadmat` (variables named by the same options; several files are merged, as the LIVE
sets ship names, MOS and standard deviations in separate files). Rows without a MOS are left out and
counted; a MOS outside the declared scale, a duplicate name or a name without a photo stops the import
with every such row named in one message (a close file name is suggested). A name that differs from
exactly one file only in case is resolved to that file and listed in the card (BIQ2021 has one).

Output, one record per photo (id = the photo's file stem), in per-photo shards
``shards/<id>.jsonl``, so a killed import resumes where it stopped (photos already written are read
back, not decoded again):

* the photo is referenced in place, never copied (several sets forbid redistribution): the folder holds
  a link ``photos`` to the photo folder (absolute), records name ``photos/<file>``; moving the dataset
  folder keeps it working, and after moving the photos the same command with the new ``--photos``
  re-points the link and rewrites nothing else. The card records the photo folder.
* one ROI, the whole photo (``source`` ``mos:whole``), quality = the normalised MOS n in [0, 1]
  (higher = better) and its word cut by :class:`seagull.authentic.MosScale` (ACR 1-5 anchors or equal
  intervals; the card's ``thresholds.quality`` are those cuts, so ``seagull data validate`` re-cuts
  the same words); no importance and no distortion labels (the card's ``label_tasks`` is
  ``["quality"]``). The raw MOS, n, the standard deviation (raw and normalised) and the photo's group
  are in ``distortion["mos"]`` (:func:`seagull.authentic.mos_of`).
* conversations: the quality question and a yes/no quality question, seeded as synthesis seeds them.
* split: the official one (a split column, or one score file per split) with a validation split drawn
  from the official train split by photo when there is none; else :func:`seagull.splits.assign_split`
  by file stem (80/10/10, seed 0), or the CUHK photo split (:func:`seagull.authentic.cuhk_split`).
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..authentic import MOS_CONVERTER, MosScale, cuhk_split
from ..errors import ConfigError, ImageLoadError, SchemaError
from ..fileio import atomic_write_text, changed_keys
from ..imageio import load_image
from ..labels import QUALITY_LEVELS
from ..records import SCHEMA_VERSION, RoiRecord, SampleRecord, read_shard, write_shard
from ..roi import mask_to_rle
from ..splits import SPLITS, assign_split
from ..templates import conversation, judgment_turn, task_turn
from ..version import __version__
from .pipeline import VISIBILITY_THRESHOLDS, conversation_seed
from .runner import prepare_out, write_histograms

CONFIG_FILE = "mos_import.json"
PHOTOS_LINK = "photos"
SPLIT_RULES = ("column", "files", "photo", "cuhk")
PHOTO_SPLIT = (0.8, 0.1, 0.1)
SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MAX_LISTED = 50  # problems named in one message; the count of the rest follows


@dataclass(frozen=True)
class ScoreFile:
    """One score table: CSV file(s) or MATLAB file(s) whose variables are merged; ``split`` when the
    table is one official split (``--train`` / ``--val`` / ``--test``)."""

    paths: tuple[Path, ...]
    split: str | None = None


@dataclass(frozen=True)
class Columns:
    name: str
    mos: str
    std: str | None = None
    split: str | None = None
    group: str | None = None


@dataclass
class MosImport:
    """What to import and how (the options of ``seagull data mos``)."""

    photos: Path
    scores: list[ScoreFile]
    columns: Columns
    scale: MosScale
    split_from: str = "photo"  # when no official split: "photo" or "cuhk"
    split_fractions: tuple[float, float, float] = PHOTO_SPLIT
    val_fraction: float = 0.1  # drawn from an official train split that has no validation split
    group_pattern: str | None = None  # a regex on the name; its first group is the photo's group
    seed: int = 0
    preset: str | None = None
    licence_notes: list[str] = field(default_factory=list)

    @property
    def split_rule(self) -> str:
        if any(f.split for f in self.scores):
            return "files"
        if self.columns.split:
            return "column"
        return self.split_from

    def check(self) -> None:
        if not self.scores:
            raise ConfigError("no score file: give --scores FILE, or --train FILE and --test FILE")
        with_split = [f for f in self.scores if f.split]
        if with_split and len(with_split) != len(self.scores):
            raise ConfigError("give either --scores or one file per split (--train/--val/--test), not both")
        if with_split and self.columns.split:
            raise ConfigError("--split-column and one score file per split both give the split; keep one")
        if self.split_from not in ("photo", "cuhk"):
            raise ConfigError(f"--split-from {self.split_from!r} is not one of photo, cuhk")
        if (with_split or self.columns.split) and self.split_from != "photo":
            raise ConfigError(
                f"--split-from {self.split_from} replaces an official split, but one is given "
                "(--split-column or --train/--test); keep one"
            )
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ConfigError(f"--split-fractions {self.split_fractions} must be three shares summing to 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction {self.val_fraction} must be in [0, 1)")
        if self.group_pattern is not None:
            try:
                groups = re.compile(self.group_pattern).groups
            except re.error as e:
                raise ConfigError(
                    f"--group-pattern {self.group_pattern!r} is not a regular expression ({e})"
                ) from e
            if groups < 1:
                raise ConfigError(f"--group-pattern {self.group_pattern!r} needs a (group) to capture")
        if not Path(self.photos).is_dir():
            raise ConfigError(
                f"--photos {self.photos} is not a folder: pass the folder that holds the photos"
            )

    def fingerprint(self) -> dict[str, Any]:
        """What the records depend on: everything but where the photos are now."""
        return {
            "scores": [
                {
                    "files": [p.name for p in f.paths],
                    "digests": [_digest(p) for p in f.paths],
                    "split": f.split,
                }
                for f in self.scores
            ],
            "columns": vars(self.columns),
            "scale": self.scale.to_dict(),
            "split_rule": self.split_rule,
            "split_fractions": list(self.split_fractions),
            "val_fraction": self.val_fraction,
            "group_pattern": self.group_pattern,
            "seed": self.seed,
        }


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- presets
BIQ2021_NOTE = (
    "BIQ2021 (Ahmed et al., J. Electronic Imaging 31(5), 2022; github.com/nisarahmedrana/BIQ2021 at "
    "62c7b40c): no licence file; its README says ss01/ss02 are the author's photos and ss03 come from a "
    "site that allows scientific use. Referenced in place: do not commit or redistribute the photos."
)
CUHK_NOTES = [
    "CUHK blur detection dataset (Shi, Xu, Jia, CVPR 2014): academic research only, no redistribution.",
    "PaQ-2-PiQ labels (Ying et al., CVPR 2020): CC BY-NC(-SA) 4.0, non-commercial.",
]
PRESETS: dict[str, dict[str, Any]] = {
    "biq2021": {
        "photos": "Images",
        "train": "Train (Images and MOS).csv",
        "test": "Test (Images and MOS).csv",
        "name_column": "Image Name",
        "mos_column": "MOS",
        "scale": (0.0, 1.0),
        "group_pattern": r"^(ss\d+)",
        "licence_notes": [BIQ2021_NOTE],
    },
    "cuhk": {
        "photos": ".",
        "scores": "labels.csv",
        "name_column": "image",
        "mos_column": "mos_paq2piq",
        "group_column": "blur_type",
        "scale": (0.0, 100.0),
        "split_from": "cuhk",
        "licence_notes": CUHK_NOTES,
    },
}


# --------------------------------------------------------------------------- reading the scores
@dataclass
class ScoreRow:
    name: str
    where: str  # "file:line"
    mos: float | None
    std: float | None
    split: str | None  # official split
    group: str | None


def _number(text: Any, what: str, where: str, problems: list[str]) -> float | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        v = float(text)
    except (TypeError, ValueError):
        problems.append(f"{where}: {what} {text!r} is not a number")
        return None
    if np.isnan(v):
        return None
    if not np.isfinite(v):
        problems.append(f"{where}: {what} {text!r} is not finite")
        return None
    return v


def _split_word(text: Any, where: str, problems: list[str]) -> str | None:
    word = SPLIT_WORDS.get(str(text).strip().lower())
    if word is None:
        problems.append(f"{where}: split {text!r} is not one of train, val, test")
    return word


def _columns_needed(cols: Columns) -> list[str]:
    return [c for c in (cols.name, cols.mos, cols.std, cols.split, cols.group) if c]


def _read_csv(path: Path, cols: Columns) -> list[tuple[str, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h for h in (reader.fieldnames or []) if h]
            missing = [c for c in _columns_needed(cols) if c not in header]
            if missing:
                raise ConfigError(
                    f"{path} has no column {', '.join(map(repr, missing))}; its columns are {header}: "
                    "name the right ones with --name-column, --mos-column, --std-column, --split-column"
                )
            return [(f"{path.name}:{reader.line_num}", row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"score file {path} cannot be read as CSV ({e})") from e


def _mat_strings(values: np.ndarray) -> list[str]:
    out = []
    for v in np.asarray(values, dtype=object).ravel():
        while isinstance(v, np.ndarray) and v.size == 1:
            v = v.ravel()[0]
        out.append(str(v).strip())
    return out


def _read_mat(paths: Sequence[Path], cols: Columns) -> list[tuple[str, dict[str, Any]]]:
    from scipy.io import loadmat

    variables: dict[str, tuple[Path, np.ndarray]] = {}
    for path in paths:
        try:
            data = loadmat(str(path), squeeze_me=True, chars_as_strings=True)
        except (OSError, ValueError, NotImplementedError) as e:
            raise ConfigError(f"score file {path} cannot be read as a MATLAB file ({e})") from e
        for k, v in data.items():
            if k.startswith("__"):
                continue
            if k in variables:
                raise ConfigError(f"variable {k!r} is in both {variables[k][0]} and {path}; give one of them")
            variables[k] = (path, v)
    missing = [c for c in _columns_needed(cols) if c not in variables]
    if missing:
        raise ConfigError(
            f"{', '.join(str(p) for p in paths)} hold no variable {', '.join(map(repr, missing))}; they hold "
            f"{sorted(variables)}: name the right ones with --name-column, --mos-column, --std-column"
        )
    columns = {c: np.asarray(variables[c][1], dtype=object).ravel() for c in _columns_needed(cols)}
    columns[cols.name] = np.asarray(_mat_strings(variables[cols.name][1]), dtype=object)
    for c in (cols.split, cols.group):
        if c:
            columns[c] = np.asarray(_mat_strings(variables[c][1]), dtype=object)
    lengths = {c: len(v) for c, v in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ConfigError(
            f"the MATLAB variables have different lengths {lengths}; they must pair up one to one"
        )
    where = variables[cols.name][0].name
    n = next(iter(lengths.values()))
    return [(f"{where}:{i + 1}", {c: v[i] for c, v in columns.items()}) for i in range(n)]


def read_scores(score: ScoreFile, cols: Columns, problems: list[str]) -> list[ScoreRow]:
    """The rows of one score table (``problems`` collects rows that are wrong, for one message)."""
    for p in score.paths:
        if not Path(p).is_file():
            raise ConfigError(f"score file {p} does not exist; check the path")
    kinds = {Path(p).suffix.lower() == ".mat" for p in score.paths}
    if len(kinds) > 1:
        raise ConfigError(
            f"{[str(p) for p in score.paths]} mix CSV and MATLAB files; give one kind per table"
        )
    if kinds == {True}:
        raw = _read_mat(score.paths, cols)
    else:
        raw = [r for p in score.paths for r in _read_csv(Path(p), cols)]
    rows = []
    for where, r in raw:
        name = str(r.get(cols.name) or "").strip()
        if not name:
            problems.append(f"{where}: the name ({cols.name}) is empty")
            continue
        split = score.split
        if cols.split:
            split = _split_word(r.get(cols.split), where, problems)
        group = str(r.get(cols.group)).strip() if cols.group and r.get(cols.group) is not None else None
        rows.append(
            ScoreRow(
                name,
                where,
                _number(r.get(cols.mos), "MOS", where, problems),
                _number(r.get(cols.std), "standard deviation", where, problems) if cols.std else None,
                split,
                group,
            )
        )
    return rows


# --------------------------------------------------------------------------- names to files
@dataclass
class Resolved:
    files: dict[str, str]  # name in the score file -> photo path relative to the photo folder
    case_only: list[dict[str, str]]  # names resolved case-insensitively
    missing: list[str]  # problems: names without a photo, with a close match if any
    unused_photos: int  # image files in the folder that no row names


def photo_index(root: Path) -> list[str]:
    """Every file under ``root`` (links followed), relative, POSIX separators, hidden ones left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root)
        out += [(rel / f).as_posix() for f in sorted(filenames) if not f.startswith(".")]
    return out


def resolve_names(rows: Sequence[ScoreRow], root: Path) -> Resolved:
    files = photo_index(root)
    exact = set(files)
    lower: dict[str, list[str]] = {}
    for f in files:
        lower.setdefault(f.lower(), []).append(f)
    found: dict[str, str] = {}
    case_only, missing = [], []
    unmatched: list[ScoreRow] = []
    for r in rows:
        name = PurePosixPath(r.name.replace("\\", "/")).as_posix()
        if name in exact:
            found[r.name] = name
        elif len(lower.get(name.lower(), [])) == 1:
            found[r.name] = lower[name.lower()][0]
            case_only.append({"name": r.name, "file": found[r.name], "row": r.where})
        else:
            unmatched.append(r)
    for k, r in enumerate(unmatched):
        text = f"{r.where} {r.name!r}"
        if len(lower.get(r.name.lower(), [])) > 1:
            text += f" (several files differ from it only in case: {lower[r.name.lower()]})"
        elif k < MAX_LISTED:
            close = difflib.get_close_matches(r.name, files, n=1, cutoff=0.75)
            if close:
                text += f" (close match: {close[0]!r})"
        missing.append(text)
    used = set(found.values())
    unused = sum(1 for f in files if f not in used and PurePosixPath(f).suffix.lower() in PHOTO_SUFFIXES)
    return Resolved(found, case_only, missing, unused)


def _listed(problems: Sequence[str]) -> str:
    shown = "; ".join(problems[:MAX_LISTED])
    return shown + (f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else "")


# --------------------------------------------------------------------------- the import
@dataclass
class MosImportResult:
    out: Path
    records: int = 0
    new: int = 0
    reused: int = 0
    per_split: Counter = field(default_factory=Counter)
    per_level: dict[str, Counter] = field(default_factory=dict)  # split -> level word -> photos
    without_mos: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (photo, reason)
    case_only: list[dict[str, str]] = field(default_factory=list)
    relinked: bool = False
    val_from_train: bool = False  # the official split had no validation part; one was drawn from train


def _photo_key(name: str) -> str:
    return PurePosixPath(name).stem


def _check_rows(
    cfg: MosImport, rows: list[ScoreRow], problems: list[str]
) -> tuple[list[ScoreRow], list[str]]:
    """Rows with a MOS (rows without one are returned as the second list); wrong rows are added to
    ``problems``."""
    with_mos, without = [], []
    for r in rows:
        if r.mos is None:
            without.append(f"{r.where} {r.name!r}")
            continue
        if not cfg.scale.contains(r.mos):
            problems.append(
                f"{r.where}: MOS {r.mos:g} of {r.name!r} is outside the declared scale "
                f"{cfg.scale.lo:g},{cfg.scale.hi:g} (--scale)"
            )
        if r.std is not None and r.std < 0:
            problems.append(f"{r.where}: standard deviation {r.std:g} of {r.name!r} is negative")
        with_mos.append(r)
    by_key: dict[str, list[ScoreRow]] = {}
    for r in with_mos:
        by_key.setdefault(_photo_key(r.name), []).append(r)
    for key, same in by_key.items():
        if len(same) > 1:
            problems.append(
                f"photo {key!r} has {len(same)} rows ({', '.join(f'{r.where} {r.name!r}' for r in same)}); "
                "keep one row per photo"
            )
    return with_mos, without


def _split_of(cfg: MosImport, row: ScoreRow, has_val: bool) -> str:
    key = _photo_key(row.name)
    rule = cfg.split_rule
    if rule == "cuhk":
        return cuhk_split(key)
    if rule == "photo":
        return assign_split(key, cfg.split_fractions, cfg.seed)
    split = row.split or "train"
    if split == "train" and not has_val and cfg.val_fraction > 0:
        return assign_split(key, (1.0 - cfg.val_fraction, cfg.val_fraction, 0.0), cfg.seed)
    return split


def _group_of(cfg: MosImport, row: ScoreRow) -> str | None:
    if row.group is not None:
        return row.group
    if cfg.group_pattern:
        m = re.search(cfg.group_pattern, row.name)
        return m.group(1) if m else None
    return None


def photo_record(
    cfg: MosImport, row: ScoreRow, rel: str, split: str, width: int, height: int
) -> SampleRecord:
    """The record of one photo: one whole-photo ROI labelled with the MOS's word."""
    scale = cfg.scale
    n = scale.normalise(row.mos)
    level = scale.level(row.mos)
    key = _photo_key(row.name)
    roi = RoiRecord(
        id="r0",
        rle=mask_to_rle(np.ones((height, width), dtype=bool)),
        bbox=[0, 0, width, height],
        area=width * height,
        source="mos:whole",
        quality=n,
        quality_level=level,
    )
    rng = random.Random(conversation_seed(cfg.seed, key))
    convs = [conversation([0], [task_turn("quality", roi, rng), judgment_turn("quality", roi, rng)])]
    mos = {
        "raw": row.mos,
        "normalised": n,
        "std": row.std,
        "std_normalised": None if row.std is None else scale.normalise_spread(row.std),
        "scale": [scale.lo, scale.hi],
        "lower_better": scale.lower_better,
        "group": _group_of(cfg, row),
        "name": row.name,
        "row": row.where,
    }
    distortion = {
        "family": "authentic",
        "subtype": None,
        "setting": 0,  # human-rated: no synthetic strength
        "num_settings": 0,
        "params": {},
        "scope": "authentic",
        "mos": mos,
    }
    return SampleRecord(key, f"{PHOTOS_LINK}/{rel}", row.name, width, height, distortion, [roi], convs, split)


def thresholds_for(scale: MosScale):
    """The card's thresholds: the scale's quality cuts; the other cuts those of label scheme v2."""
    return replace(VISIBILITY_THRESHOLDS, quality=scale.cuts)


def _link_photos(out: Path, photos: Path) -> bool:
    """Point ``out/photos`` at the photo folder; True when an existing link was re-pointed."""
    link = out / PHOTOS_LINK
    target = Path(photos).resolve()
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return False
        tmp = out / f".{PHOTOS_LINK}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, link)
        return True
    if link.exists():
        raise ConfigError(f"--out {out} already holds {link} that is not a link; choose a new --out folder")
    try:
        link.symlink_to(target, target_is_directory=True)
    except OSError as e:
        raise ConfigError(
            f"cannot make the link {link} -> {target} ({e}); choose an --out on a filesystem with links"
        ) from e
    return False


def _check_out(out: Path, cfg: MosImport) -> None:
    """A new folder, or one written by this import with the same options; else a ConfigError."""
    path, fp = out / CONFIG_FILE, cfg.fingerprint()
    diff = changed_keys(path, fp)
    if diff:
        raise ConfigError(
            f"{out} was imported with other options or score files ({', '.join(diff)} differ); "
            "use a new --out folder or the original options"
        )
    if diff is not None:
        return
    if (out / "dataset.json").is_file() or (out / "shards").is_dir():
        raise ConfigError(f"--out {out} holds another dataset; choose a new --out folder")
    atomic_write_text(path, json.dumps(fp, indent=2))


def _reuse(shard: Path, key: str, rel: str, out: Path) -> SampleRecord | None:
    """The record written by an earlier run, if its shard is whole and its photo is still there."""
    if not shard.is_file():
        return None
    try:
        recs = [SampleRecord.from_dict(d) for d in read_shard(shard)]
    except SchemaError:
        return None
    if len(recs) != 1 or recs[0].id != key or recs[0].image != f"{PHOTOS_LINK}/{rel}":
        return None
    return recs[0] if (out / recs[0].image).is_file() else None


def import_mos(cfg: MosImport, out: Path, progress: bool = False) -> MosImportResult:
    """Write the human-rated set described by ``cfg`` as a dataset folder ``out`` (resumed if it exists)."""
    cfg.check()
    out = Path(out)
    problems: list[str] = []
    rows = [r for f in cfg.scores for r in read_scores(f, cfg.columns, problems)]
    rows, without = _check_rows(cfg, rows, problems)
    if problems:
        raise ConfigError(f"{len(problems)} problems in the score file(s): {_listed(problems)}")
    if not rows:
        raise ConfigError("the score file(s) hold no row with a MOS; check --mos-column and the files")
    resolved = resolve_names(rows, Path(cfg.photos))
    if resolved.missing:
        raise ConfigError(
            f"{len(resolved.missing)} names in the score file(s) have no photo in {cfg.photos}: "
            f"{_listed(resolved.missing)}. Fix the names, or pass the folder that holds the photos with --photos"
        )
    prepare_out(out)
    _check_out(out, cfg)
    res = MosImportResult(out, without_mos=without, case_only=resolved.case_only)
    res.relinked = _link_photos(out, Path(cfg.photos))
    has_val = any(r.split == "val" for r in rows)
    res.val_from_train = cfg.split_rule in ("column", "files") and not has_val and cfg.val_fraction > 0
    records: list[SampleRecord] = []
    (out / "shards").mkdir(exist_ok=True)
    from tqdm import tqdm

    for row in tqdm(rows, desc="mos import", unit="photo", disable=not progress, mininterval=2.0):
        key, rel = _photo_key(row.name), resolved.files[row.name]
        shard = out / "shards" / f"{key}.jsonl"
        rec = _reuse(shard, key, rel, out)
        if rec is not None:
            res.reused += 1
        else:
            try:
                h, w = load_image(out / PHOTOS_LINK / rel, name=rel).shape[:2]
            except ImageLoadError as e:
                res.skipped.append((rel, f"unreadable: {e}"))
                shard.unlink(missing_ok=True)
                continue
            rec = photo_record(cfg, row, rel, _split_of(cfg, row, has_val), w, h)
            write_shard(shard, [rec])
            res.new += 1
        records.append(rec)
    res.records = len(records)
    for rec in records:
        res.per_split[rec.split] += 1
        res.per_level.setdefault(rec.split, Counter())[rec.rois[0].quality_level] += 1
    _write_card(cfg, res, records, resolved.unused_photos)
    return res


def _mos_summary(records: Sequence[SampleRecord]) -> dict[str, Any]:
    out = {}
    for split in SPLITS:
        vals = [r.distortion["mos"]["raw"] for r in records if r.split == split]
        if vals:
            out[split] = {"n": len(vals), "min": min(vals), "mean": float(np.mean(vals)), "max": max(vals)}
    return out


def _write_card(cfg: MosImport, res: MosImportResult, records: list[SampleRecord], unused: int) -> None:
    levels = Counter(rec.rois[0].quality_level for rec in records)
    groups = Counter(rec.distortion["mos"]["group"] for rec in records if rec.distortion["mos"]["group"])
    rule = cfg.split_rule
    split_info: dict[str, Any] = {"rule": rule, "by": "photo file stem"}
    if rule == "photo":
        split_info.update(fractions=list(cfg.split_fractions), seed=cfg.seed)
    elif rule == "cuhk":
        split_info["note"] = "the fixed CUHK photo split of seagull.authentic.cuhk_split (70/10/20, seed 0)"
    else:
        split_info["official"] = "split column" if rule == "column" else "one score file per split"
        if res.val_from_train:
            split_info["val_from_train"] = {
                "fraction": cfg.val_fraction,
                "seed": cfg.seed,
                "by": "photo file stem (seagull.splits.assign_split)",
            }
    card = {
        "name": res.out.name,
        "schema_version": SCHEMA_VERSION,
        "seagull_version": __version__,
        "counts": {
            "references": len(records),
            "records": len(records),
            "rois": len(records),
            "per_family": {"authentic": len(records)},
            "per_split": {s: res.per_split[s] for s in SPLITS if res.per_split.get(s)},
        },
        "level_counts": {
            "quality": {w: levels.get(w, 0) for w in QUALITY_LEVELS},
            "importance": {},
            "severity": {},
        },
        "level_counts_per_split": {
            s: {w: res.per_level[s].get(w, 0) for w in QUALITY_LEVELS} for s in SPLITS if s in res.per_level
        },
        "groups": dict(sorted(groups.items())),
        "roi_sources": {"mos:whole": len(records)},
        "thresholds": thresholds_for(cfg.scale).to_dict(),
        "label_metric": "",  # human labels, no full-reference metric
        "label_tasks": ["quality"],
        "labels": {
            "quality": "the MOS normalised to [0, 1] on the declared scale, higher = better",
            "quality_level": (
                "ACR anchors 1 bad .. 5 excellent, boundaries at the midpoints"
                if cfg.scale.levels == "acr"
                else "five equal intervals of the declared scale"
            ),
            "importance": "not labelled (the ROI is the whole photo)",
            "distortions": "not labelled: train these records on the quality task only",
            "mos": "distortion.mos of each record: raw, normalised, std, std_normalised, scale, group",
        },
        "mos": {"scale": cfg.scale.to_dict(), "summary": _mos_summary(records)},
        "settings": [],
        "seed": cfg.seed,
        "split": split_info,
        "sources": {
            "converter": MOS_CONVERTER,
            "preset": cfg.preset,
            "photos_root": str(Path(cfg.photos).resolve()),
            "photos_link": PHOTOS_LINK,
            "score_files": [{"paths": [str(p) for p in f.paths], "split": f.split} for f in cfg.scores],
            "columns": vars(cfg.columns),
            "group_pattern": cfg.group_pattern,
            "rows_without_mos": res.without_mos,
            "case_only_matches": res.case_only,
            "photos_without_score": unused,
            "skipped": len(res.skipped),
            "skipped_photos": [{"photo": p, "reason": r} for p, r in res.skipped],
        },
        "licence_notes": list(cfg.licence_notes)
        or ["the photos are referenced in place, not copied; see the set's own licence"],
    }
    atomic_write_text(res.out / "dataset.json", json.dumps(card, indent=2))
    if records:
        write_histograms(res.out, {k: dict(v) for k, v in card["level_counts"].items()})


# --------------------------------------------------------------------------- options
def config_from_options(
    *,
    preset: str | None = None,
    source: Path | None = None,
    photos: Path | None = None,
    scores: Sequence[Path] | None = None,
    train: Sequence[Path] | None = None,
    val: Sequence[Path] | None = None,
    test: Sequence[Path] | None = None,
    name_column: str | None = None,
    mos_column: str | None = None,
    std_column: str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    group_pattern: str | None = None,
    scale: tuple[float, float] | None = None,
    lower_better: bool = False,
    levels: str = "auto",
    split_from: str | None = None,
    split_fractions: tuple[float, float, float] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    licence_notes: Sequence[str] | None = None,
) -> MosImport:
    """A :class:`MosImport` from the command's options; a preset fills in what is not given (its
    paths relative to ``source``), an option given explicitly wins."""
    p: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if source is None:
            raise ConfigError(f"--preset {preset} needs --source, the set's folder (e.g. a clone of the set)")
        p = dict(PRESETS[preset])
        for k in ("photos", "scores", "train", "val", "test"):
            if k in p:
                p[k] = Path(source) / p[k]
    elif source is not None:
        raise ConfigError("--source is the folder of a --preset; without a preset give --photos and --scores")
    own_files = any(x for x in (scores, train, val, test))
    tables = {"scores": scores, "train": train, "val": val, "test": test}
    if not own_files:
        tables = {k: [p[k]] if k in p else None for k in tables}
    files = [
        ScoreFile(tuple(Path(x) for x in v), None if k == "scores" else k) for k, v in tables.items() if v
    ]
    needed = {
        "--photos": photos or p.get("photos"),
        "--name-column": name_column or p.get("name_column"),
        "--mos-column": mos_column or p.get("mos_column"),
        "--scale": scale or p.get("scale"),
    }
    missing = [k for k, v in needed.items() if v is None]
    if missing or not files:
        missing += [] if files else ["--scores (or --train and --test)"]
        raise ConfigError(
            f"seagull data mos needs {', '.join(missing)}; or use --preset {{{','.join(PRESETS)}}} --source DIR"
        )
    lo, hi = needed["--scale"]
    return MosImport(
        photos=Path(needed["--photos"]),
        scores=files,
        columns=Columns(
            needed["--name-column"],
            needed["--mos-column"],
            std_column or p.get("std_column"),
            split_column or p.get("split_column"),
            group_column or p.get("group_column"),
        ),
        scale=MosScale(float(lo), float(hi), lower_better, levels),
        split_from=split_from or p.get("split_from", "photo"),
        split_fractions=tuple(split_fractions) if split_fractions else PHOTO_SPLIT,
        val_fraction=val_fraction,
        group_pattern=group_pattern if group_pattern is not None else p.get("group_pattern"),
        seed=seed,
        preset=preset,
        licence_notes=list(licence_notes or p.get("licence_notes", [])),
    )
