"""No command writes over what it reads: the one check every writing command makes on its output paths.

An output is refused when it is one of the command's inputs under any name: the same path, a symbolic
link to it (or a path through a linked folder), or a hard link to the same file. A folder input counts
with everything inside it (a model folder, a dataset folder); ``inside_output=True`` also refuses an
input that lies inside an output folder, for commands that fill their output folder with files whose
names may meet the input's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError

PathLike = str | os.PathLike[str]


def _resolved(path: PathLike) -> Path:
    return Path(path).resolve()  # absolute, symbolic links followed (what a write would reach)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _folder_holds_file(folder: Path, ident: tuple[int, int]) -> bool:
    """Whether a file below ``folder`` is the file ``ident`` (a hard link of it)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if _identity(Path(root) / name) == ident:
                return True
    return False


def _clash(out: Path, inp: Path, inside_output: bool) -> str | None:
    """How writing ``out`` can change the input ``inp`` (both resolved), or None when it cannot."""
    out_id, in_id = _identity(out), _identity(inp)
    if out == inp or (out_id is not None and out_id == in_id):
        return "is the same file or folder as"  # also a hard link, or one file through a bind mount
    if inp.is_dir() and _within(out, inp):
        return "lies inside"  # a folder read as a whole
    if inside_output and _within(inp, out):
        return "holds"
    linked = out_id is not None and out.is_file() and out.stat().st_nlink > 1
    if linked and inp.is_dir() and _folder_holds_file(inp, out_id):
        return "is a hard link to a file of"
    return None


def refuse_overwrite(
    option: str,
    output: PathLike | None,
    inputs: Iterable[tuple[str, PathLike | None]],
    *,
    inside_output: bool = False,
) -> None:
    """Raise :class:`ConfigError` when writing ``output`` (given as ``option``) could change one of
    ``inputs``, each a pair (how the user named it, path); ``None`` paths are skipped. Call it before
    any work, and before anything opens the output."""
    if output is None or str(output) == "":
        return
    out = _resolved(output)
    for label, path in inputs:
        if path is None or str(path) == "":
            continue
        how = _clash(out, _resolved(path), inside_output)
        if how:
            raise ConfigError(
                f"{option} {output} {how} the input {label} {path}: writing it would overwrite what the "
                f"command reads; choose another {option} outside the inputs"
            )


def refuse_same_outputs(outputs: Iterable[tuple[str, PathLike | None]]) -> None:
    """Raise :class:`ConfigError` when two outputs of one command are the same file."""
    seen: list[tuple[str, PathLike, Path]] = []
    for option, path in outputs:
        if path is None or str(path) == "":
            continue
        out = _resolved(path)
        for other_option, other_path, other in seen:
            if out == other or (_identity(out) is not None and _identity(out) == _identity(other)):
                raise ConfigError(
                    f"{option} {path} is the same file as {other_option} {other_path}; "
                    "give each output its own file name"
                )
        seen.append((option, path, out))
