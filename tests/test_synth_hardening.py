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
from seagull.fileio import atomic_write_bytes, atomic_write_text
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
    kill_and_check_workers_die(cmd, workers=2, tmp_path=tmp_path)


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


# --------------------------------------------------------------------------- relabel and validate


@pytest.fixture(scope="module")
def v2_dataset(tmp_path_factory) -> Path:
    """A small folder under label scheme v2, whose thresholds are not the package's defaults."""
    out = tmp_path_factory.mktemp("v2") / "ds"
    cfg = SynthConfig(
        "examples/chelsea.jpg", out, settings=2, families=("blur", "noise"), max_rois=2, max_side=96
    )
    assert run_synthesis(cfg, progress=False).records > 2
    return out


@pytest.fixture
def dataset(v2_dataset, tmp_path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(v2_dataset, copy)
    return copy


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(argv: list[str]) -> int:
    """``main``'s exit code, also when argparse itself refuses a value (SystemExit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


@pytest.mark.parametrize(
    "option,value",
    [
        ("--quality", "nan,0.5,0.8,0.95"),
        ("--quality", "0.5,0.6,0.7,nan"),
        ("--importance", "0.01,0.05,0.1,inf"),
        ("--severity", "-0.1,0.2,0.3,0.4"),
        ("--quality", "0.5,0.4,0.6,0.7"),
        ("--quality", "0.5,0.6,0.7"),
        ("--quality", "0.5,0.6,0.7,1.5"),
        ("--quality", "a,b,c,d"),
        ("--visible", "nan"),
        ("--visible", "inf"),
        ("--visible", "1.5"),
    ],
)
def test_relabel_refuses_thresholds_that_are_not_increasing_finite_fractions(dataset, option, value, capsys):
    before = _files(dataset)
    assert _run(["data", "relabel", str(dataset), f"{option}={value}"]) == 2  # "=": "-0.1,..." is a value
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err
    assert _files(dataset) == before  # nothing rewritten, no backup made


def test_thresholds_refuse_non_finite_and_out_of_range_cuts():
    from seagull.errors import SchemaError
    from seagull.labels import Thresholds

    for bad in (
        dict(quality=(float("nan"), 0.5, 0.8, 0.95)),
        dict(importance=(0.0, 0.1, 0.2, float("inf"))),
        dict(severity=(-0.5, 0.1, 0.2, 0.3)),
        dict(visible=float("nan")),
        dict(visible=2.0),
    ):
        with pytest.raises(SchemaError, match="finite"):
            Thresholds(**bad)


def test_relabel_changes_only_what_it_is_asked_keeps_a_backup_and_says_what_changed(dataset, capsys):
    from seagull.records import iter_records

    card = json.loads((dataset / "dataset.json").read_text())
    old = dict(card["thresholds"])
    before_files = _files(dataset)
    levels_before = [(r.quality_level, r.importance_level) for rec in iter_records(dataset) for r in rec.rois]

    assert main(["data", "relabel", str(dataset), "--visible", "0.2"]) == 0
    out = capsys.readouterr().out
    new = json.loads((dataset / "dataset.json").read_text())["thresholds"]
    assert new == {**old, "visible": 0.2}  # quality, importance and severity stay the dataset's own
    assert [
        (r.quality_level, r.importance_level) for rec in iter_records(dataset) for r in rec.rois
    ] == levels_before
    assert f"thresholds.visible: {old['visible']} -> 0.2" in out and "thresholds.quality" not in out
    assert "before" in out and "after" in out and "severity none" in out
    # the files it rewrote, as they were, in a numbered backup folder
    backup = dataset / "relabel_backups" / "1"
    assert f"kept in {backup}" in out
    for rel, data in _files(backup).items():
        assert before_files[rel] == data, rel
    assert {"dataset.json", "synth_config.json"} <= set(_files(backup))
    assert any(rel.startswith("shards/") for rel in _files(backup))
    from seagull.synth.dataset_check import validate_dataset

    assert validate_dataset(dataset)[1] == []

    # the same value again changes no threshold (it no longer resets the others to the package's)
    assert main(["data", "relabel", str(dataset), "--visible", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "thresholds unchanged" in out and (dataset / "relabel_backups" / "2").is_dir()
    assert json.loads((dataset / "dataset.json").read_text())["thresholds"] == new


def _replace_line(shard: Path, k: int, data: bytes) -> None:
    lines = shard.read_bytes().split(b"\n")
    lines[k - 1] = data
    shard.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("where", ["card", "record field", "record number"])
def test_validate_rejects_nan_and_infinity_anywhere(dataset, where, capsys):
    from seagull.records import shard_paths

    if where == "card":
        card = json.loads((dataset / "dataset.json").read_text())
        card["settings"] = {"note": float("nan")}
        (dataset / "dataset.json").write_text(json.dumps(card))
    else:
        shard = shard_paths(dataset)[0]
        rec = json.loads(shard.read_bytes().split(b"\n")[1])
        if where == "record field":
            rec["distortion"]["params"] = {"sigma": float("inf")}
        else:
            rec["rois"][0]["importance"] = float("nan")
        _replace_line(shard, 2, json.dumps(rec).encode())
    assert main(["data", "validate", str(dataset)]) == 1
    captured = capsys.readouterr()
    assert ("NaN" in captured.err) or ("Infinity" in captured.err), captured.err
    assert (f"{shard_paths(dataset)[0].name}:2" in captured.err) or where == "card"
    assert " 0 problems" not in captured.out


def test_a_shard_that_is_not_utf8_is_a_schema_error_naming_file_and_line(dataset, tmp_path, capsys):
    import yaml

    from seagull.errors import SchemaError
    from seagull.records import iter_records, shard_paths
    from seagull.train.config import load_config

    shard = shard_paths(dataset)[0]
    _replace_line(shard, 1, b'{"id": "caf\xe9 \xff"}')
    # data validate: one problem naming the shard and the line, the other records still checked
    assert main(["data", "validate", str(dataset), "--skip-images"]) == 1
    captured = capsys.readouterr()
    assert f"{shard}:1 is not UTF-8" in captured.err and "Traceback" not in captured.err
    records = json.loads((dataset / "dataset.json").read_text())["counts"]["records"]
    assert f"{records - 1} records checked" in captured.out
    # what training and evaluation read records with
    with pytest.raises(SchemaError, match=rf"{shard.name}:1 is not UTF-8"):
        list(iter_records(dataset))
    config = tmp_path / "train.yaml"
    raw = yaml.safe_load((Path("src/seagull/train/configs/tiny_cpu.yaml")).read_text())
    raw["data"]["train"], raw["data"]["train_split"] = [str(dataset)], None
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=rf"{shard.name}:1 is not UTF-8"):
        load_config(config)
