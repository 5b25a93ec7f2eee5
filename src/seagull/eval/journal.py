"""Resumable evaluation runs: every predictor's raw outputs are written as they are made.

A report folder holds ``raw_outputs/run.json`` (the run's fingerprint: data, split, limit,
predictors) and ``raw_outputs/<predictor>.jsonl``, one line per item (a sample id, or a suite's
photo), appended and flushed as soon as the predictor has answered:

```
{"key": "kodim01__blur__s07", "seconds": 0.21, "outputs": [{"name": "r0", ..., "quality_uncalibrated": -41.2, "raw": {"brisque": 41.2}}]}
{"key": "kodim02__clean", "seconds": 0.0, "error": "ROI r3: ..."}
```

A rerun with the same arguments and report folder reads them back and only computes what is
missing. Every result, new or resumed, is used as read back from its JSON line (a list of
:class:`seagull.region_prediction.RegionPrediction`), so an interrupted and resumed run gives exactly
the numbers of an uninterrupted one. A rerun that only adds predictors (a new model beside
the saved baselines) reuses the others' outputs and runs the added ones. A folder written by a run
with other settings is refused (``restart=True`` discards it).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import ConfigError, SchemaError
from ..fileio import atomic_write_text
from ..region_prediction import RegionPrediction

JOURNAL_DIR = "raw_outputs"
Outputs = list[RegionPrediction]


def _plain(v: Any) -> Any:
    """Outputs as JSON values: predictions and other dataclasses become dicts, numpy scalars and arrays
    plain numbers."""
    if isinstance(v, RegionPrediction):
        return _plain(v.to_dict())
    if is_dataclass(v) and not isinstance(v, type):
        return _plain(asdict(v))
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    return v


def digest(lines: Iterable[str]) -> str:
    """A short content hash of some text lines (record lists, index files)."""
    h = hashlib.sha1()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str | None:
    p = Path(path)
    return hashlib.sha1(p.read_bytes()).hexdigest()[:16] if p.is_file() else None


def predictor_identity(p: Any) -> str:
    """What a predictor's outputs depend on: its name, and for a model its files (``identity``)."""
    return str(getattr(p, "identity", None) or p.name)


def _file_name(predictor: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", predictor) + ".jsonl"


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys)


def _adds_predictors(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` is ``old`` with more predictors: then the saved outputs of ``old``'s predictors
    (the same files, identities and data) are reused and only the added ones run, so a model is
    added to a finished report without running every baseline again."""
    rest_old = {k: v for k, v in old.items() if k != "predictors"}
    rest_new = {k: v for k, v in new.items() if k != "predictors"}
    before, now = old.get("predictors") or [], new.get("predictors") or []
    return rest_old == rest_new and set(before) <= set(now)


def _read_back(entry: dict[str, Any]) -> dict[str, Any]:
    """A saved entry with its outputs as predictions."""
    if "outputs" in entry:
        entry["outputs"] = [RegionPrediction.from_dict(o) for o in entry["outputs"]]
    return entry


class RunJournal:
    """Raw outputs of each predictor by item key, on disk under ``folder`` (or in memory: None)."""

    def __init__(self, folder: Path | None, fingerprint: dict[str, Any], restart: bool = False) -> None:
        self.folder = None if folder is None else Path(folder)
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self._entries: dict[str, dict[str, dict[str, Any]]] = {}
        self._files: dict[str, IO[str]] = {}
        if self.folder is not None:
            self._open_folder(restart)

    def _open_folder(self, restart: bool) -> None:
        meta = self.folder / "run.json"
        if restart:
            for p in self.folder.glob("*.jsonl"):
                p.unlink()
        elif meta.is_file():
            old = json.loads(meta.read_text(encoding="utf-8"))
            if old != self.fingerprint and not _adds_predictors(old, self.fingerprint):
                raise ConfigError(
                    f"{self.folder} holds the outputs of an evaluation with other settings "
                    f"({_describe_change(old, self.fingerprint)}): rerun it with the same arguments to "
                    "resume it, choose another --out folder, or add --restart to discard those outputs"
                )
        atomic_write_text(meta, json.dumps(self.fingerprint, indent=2))

    # ------------------------------------------------------------------ reading
    def saved_count(self) -> int:
        """How many results earlier runs saved (lines in the folder's files)."""
        if self.folder is None:
            return 0
        return sum(p.read_bytes().count(b"\n") for p in self.folder.glob("*.jsonl"))

    def _load(self, predictor: str) -> dict[str, dict[str, Any]]:
        if predictor in self._entries:
            return self._entries[predictor]
        entries: dict[str, dict[str, Any]] = {}
        path = None if self.folder is None else self.folder / _file_name(predictor)
        if path is not None and path.is_file():
            data = path.read_bytes()
            *complete, tail = data.split(b"\n")
            for n, line in enumerate(complete, 1):
                if not line.strip():
                    continue
                try:
                    e = json.loads(line)
                except json.JSONDecodeError as err:
                    raise SchemaError(
                        f"{path}:{n} is not valid JSON ({err.msg}); add --restart to discard the saved outputs"
                    ) from err
                entries[e["key"]] = _read_back(e)
            if tail:  # a line cut off by an interruption: dropped, its item is computed again
                with path.open("r+b") as f:
                    f.truncate(len(data) - len(tail))
        self._entries[predictor] = entries
        return entries

    def get(self, predictor: str, key: str) -> dict[str, Any] | None:
        """The saved entry (``outputs`` or ``error``, and ``seconds``) or None if not done yet."""
        return self._load(predictor).get(key)

    # ------------------------------------------------------------------ writing
    def add(
        self,
        predictor: str,
        key: str,
        outputs: Outputs | None = None,
        error: str | None = None,
        seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Save one result (flushed at once) and return it as read back from its JSON line."""
        e: dict[str, Any] = {"key": key, "seconds": float(seconds)}
        if error is not None:
            e["error"] = error
        else:
            e["outputs"] = _plain(outputs)
        line = json.dumps(e)
        e = _read_back(json.loads(line))
        self._load(predictor)[key] = e
        if self.folder is not None:
            f = self._files.get(predictor)
            if f is None:
                f = self._files[predictor] = (self.folder / _file_name(predictor)).open("a", encoding="utf-8")
            f.write(line + "\n")
            f.flush()
        return e

    def predict(self, predictor: Any, key: str, image: np.ndarray, masks: list[np.ndarray]) -> Outputs:
        """``predictor.predict(image, masks)`` saved under ``key``, or its saved outputs (errors propagate)."""
        e = self.get(predictor.name, key)
        if e is None:
            t = time.perf_counter()
            out = predictor.predict(image, masks)
            e = self.add(predictor.name, key, outputs=out, seconds=time.perf_counter() - t)
        return e["outputs"]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self) -> RunJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_journal(
    out_dir: Path | None, fingerprint: dict[str, Any], restart: bool = False, verbose: bool = False
) -> RunJournal:
    """The journal of a report folder (``out_dir/raw_outputs``), or an in-memory one without a folder;
    ``verbose`` says on stderr when an earlier run is resumed."""
    journal = RunJournal(None if out_dir is None else Path(out_dir) / JOURNAL_DIR, fingerprint, restart)
    saved = journal.saved_count()
    if verbose and saved:
        print(f"resuming: {saved} saved outputs in {journal.folder} are reused", file=sys.stderr, flush=True)
    return journal


def progress_bar(total: int, desc: str, enabled: bool, items: Iterable[Any] | None = None):
    """A tqdm bar on stderr, over ``items`` if given (it does nothing when not ``enabled``)."""
    from tqdm import tqdm

    return tqdm(
        items,
        total=total,
        desc=desc,
        unit="item",
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
        dynamic_ncols=True,
    )
