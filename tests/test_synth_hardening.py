"""`seagull synth` at its edges: unwritable output folders, workers outliving a killed parent, file
permissions on shared filesystems, and the choice of the COCO annotation file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seagull.cli import main
from seagull.errors import ConfigError
from seagull.schema import atomic_write_bytes, atomic_write_text
from seagull.synth import SynthConfig, discover_references, run_synthesis

TINY = dict(settings=1, families=("blur",), max_rois=2, max_side=128)
COCO_IMAGES = ("000000000025.jpg", "000000000030.jpg")


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- the output folder


@pytest.mark.parametrize("where", ["proc", "file"])
def test_an_output_folder_that_cannot_be_made_is_one_clear_error(where, tmp_path, capsys):
    out = Path("/proc/seagull-synth-out") if where == "proc" else tmp_path / "a-file"
    if where == "file":
        out.write_text("not a folder")
    rc = main(["synth", "--refs", "examples/chelsea.jpg", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert f"--out {out}" in err and "writ" in err


def test_the_output_folder_is_checked_before_any_work(tmp_path):
    cfg = SynthConfig("examples/chelsea.jpg", "/proc/seagull-synth-out", **TINY)
    calls = []
    with pytest.raises(ConfigError, match="--out /proc/seagull-synth-out"):
        run_synthesis(cfg, progress=False, on_result=calls.append)
    assert calls == []


# --------------------------------------------------------------------------- workers and their parent


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc to find the workers")
def test_workers_die_with_their_killed_parent(shared_data, tmp_path):
    from helpers import kill_and_check_workers_die

    cmd = [
        sys.executable, "-m", "seagull", "synth", "--refs", str(shared_data / "kodak" / "images"),
        "--out", str(tmp_path / "o"), "--quiet", "--workers", "2", "--limit", "8", "--settings", "3",
        "--families", "blur,noise", "--max-rois", "3", "--max-side", "160",
    ]  # fmt: skip
    kill_and_check_workers_die(cmd, workers=2)


# --------------------------------------------------------------------------- permissions


def test_atomic_writes_follow_the_umask(tmp_path):
    with umask(0o007):
        atomic_write_text(tmp_path / "a.json", "{}")
        atomic_write_bytes(tmp_path / "b.bin", b"\x00")
    assert _mode(tmp_path / "a.json") == _mode(tmp_path / "b.bin") == 0o660


def test_synthesised_files_are_readable_by_others_under_umask_022(shared_data, tmp_path):
    out = tmp_path / "o"
    cfg = SynthConfig(shared_data / "kodak" / "images", out, **{**TINY, "families": ("compression", "blur")})
    with umask(0o022):
        run_synthesis(cfg, limit=1, progress=False)
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"dataset.json", "synth_config.json"} <= names
    assert any(p.suffix in (".jpg", ".webp") for p in files), "a compression image written from its bytes"
    assert {str(p.relative_to(out)): oct(_mode(p)) for p in files if _mode(p) != 0o644} == {}


# --------------------------------------------------------------------------- COCO annotation files


@pytest.fixture
def coco_refs(shared_data, tmp_path) -> Path:
    """A COCO-layout folder of two photos and one annotation file."""
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in COCO_IMAGES:
        shutil.copy(shared_data / "coco128" / "images" / name, root / "images" / name)
    shutil.copy(
        shared_data / "coco128" / "annotations" / "instances_shared.json", root / "annotations" / "b.json"
    )
    return root


def test_the_only_annotation_file_is_used_named_and_recorded(coco_refs, tmp_path, capsys):
    out = tmp_path / "o"
    args = ["synth", "--refs", str(coco_refs), "--out", str(out), "--rois", "both", "--limit", "1"]
    args += ["--settings", "1", "--families", "blur", "--max-side", "128", "--max-rois", "2"]
    assert main([*args, "--quiet"]) == 0
    used = str(coco_refs / "annotations" / "b.json")
    assert f"COCO annotations {used}" in capsys.readouterr().out
    card = json.loads((out / "dataset.json").read_text())
    assert card["sources"]["annotations"] == used
    config = json.loads((out / "synth_config.json").read_text())
    assert "annotations" not in config  # folders made before --annotations existed still resume
    # naming the file that was used implicitly resumes the folder; another file does not
    assert main([*args, "--quiet", "--annotations", used]) == 0
    other = tmp_path / "other.json"
    shutil.copy(used, other)
    assert main([*args, "--quiet", "--annotations", str(other)]) == 2
    assert "annotations differ" in capsys.readouterr().err


def test_several_annotation_files_need_annotations(coco_refs):
    shutil.copy(coco_refs / "annotations" / "b.json", coco_refs / "annotations" / "a.json")
    with pytest.raises(ConfigError, match=r"a\.json, b\.json.*--annotations"):
        discover_references(coco_refs)
    chosen = coco_refs / "annotations" / "b.json"
    assert {r.coco for r in discover_references(coco_refs, chosen)} == {chosen}
    assert {r.coco for r in discover_references(coco_refs, coco=False)} == {None}  # automatic ROIs need none


def test_automatic_rois_ignore_several_annotation_files(coco_refs, tmp_path):
    shutil.copy(coco_refs / "annotations" / "b.json", coco_refs / "annotations" / "a.json")
    s = run_synthesis(SynthConfig(coco_refs, tmp_path / "o", **TINY), limit=1, progress=False)
    assert s.done == 1 and not s.failed


def test_bad_annotations_option_is_refused(coco_refs, tmp_path):
    with pytest.raises(ConfigError, match="--annotations .*missing.json"):
        SynthConfig(coco_refs, tmp_path, rois="gt", annotations=tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="--rois gt or both"):
        SynthConfig(coco_refs, tmp_path, annotations=coco_refs / "annotations" / "b.json")
