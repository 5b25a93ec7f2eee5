"""Writing files so that a reader never sees half of one, and reading JSON strictly.

:func:`atomic_write_text` / :func:`atomic_write_bytes` write beside the target and rename, so a path
holds either its old or its complete new content; :func:`strict_json` refuses NaN, Infinity and bytes
that are not UTF-8, naming the file (and line) it read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import SchemaError


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


def changed_keys(path: Path, fingerprint: dict[str, Any]) -> list[str] | None:
    """Keys whose values differ between the JSON object saved at ``path`` and ``fingerprint``; None when
    nothing is saved there (a new folder). How resumable jobs check that they continue the same job."""
    if not path.is_file():
        return None
    old = json.loads(path.read_text(encoding="utf-8"))
    return sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
