"""The `seagull` command end to end, on the bundled example and a small random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seagull.cli import main

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "coffee.jpg")


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "seagull" in capsys.readouterr().out
    assert main([]) == 0
    assert "synth" in capsys.readouterr().out


def test_assess_table_json_and_picture(micro_model_dir, tmp_path, capsys):
    assert (
        main(
            [
                "assess",
                EXAMPLE,
                "--model",
                str(micro_model_dir),
                "--box",
                "150,40,330,300",
                "--rois",
                "examples/coffee_rois.json",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "box(150,40,330" in out and "cup" in out and "coffee surface" in out
    png = tmp_path / "a.png"
    assert (
        main(
            [
                "assess",
                EXAMPLE,
                "--model",
                str(micro_model_dir),
                "--box",
                "10,10,100,100",
                "--json",
                "--out",
                str(png),
                "--tasks",
                "quality",
            ]
        )
        == 0
    )
    item = json.loads(capsys.readouterr().out)
    assert item["width"] == 600 and len(item["rois"]) == 1
    r = item["rois"][0]
    assert 0 <= r["quality"] <= 1 and r["importance"] is None and r["distortions"] == []
    assert png.is_file() and png.stat().st_size > 1000


def test_whole_image_is_the_default_region(micro_model_dir, capsys):
    assert main(["assess", EXAMPLE, "--model", str(micro_model_dir), "--json"]) == 0
    item = json.loads(capsys.readouterr().out)
    assert item["rois"][0]["name"] == "whole image" and item["rois"][0]["bbox"] == [0, 0, 600, 400]


def test_bad_input_is_one_line_and_exit_2(micro_model_dir, capsys):
    assert main(["assess", EXAMPLE, "--model", str(micro_model_dir), "--box", "900,10,5,5"]) == 2
    err = capsys.readouterr().err
    assert "outside the 600x400 image" in err and err.count("\n") == 1
    assert main(["assess", "missing.jpg", "--model", str(micro_model_dir)]) == 2
    assert main(["assess", EXAMPLE, "--model", str(micro_model_dir), "--rle", "{broken"]) == 2


def test_batch_goes_on_past_a_bad_item(micro_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "out.jsonl"
    rc = main(
        [
            "assess",
            EXAMPLE,
            str(bad),
            "examples/chelsea.jpg",
            "--model",
            str(micro_model_dir),
            "--box",
            "0,0,50,50",
            "--output",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 1
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [("error" in x) for x in lines] == [False, True, False]
    assert "ImageLoadError" in lines[1]["error"]


def test_every_region_and_map(micro_model_dir, tmp_path, capsys):
    assert (
        main(["assess", EXAMPLE, "--model", str(micro_model_dir), "--every", "--json", "--tasks", "quality"])
        == 0
    )
    item = json.loads(capsys.readouterr().out)
    assert len(item["rois"]) >= 3
    heat = tmp_path / "map.png"
    args = ["map", EXAMPLE, "--model", str(micro_model_dir), "--out", str(heat), "--mode", "segments"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert heat.is_file() and "rank" in out and out.count("region") >= 3


def test_synth_and_validate_commands(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(
        [
            "synth",
            "--refs",
            "examples/chelsea.jpg",
            "--out",
            str(out),
            "--settings",
            "2",
            "--families",
            "blur,exposure",
            "--max-side",
            "160",
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean ROI quality per setting" in text and "blur" in text
    assert main(["data", "validate", str(out)]) == 0
    assert main(["synth", "--refs", "examples", "--out", str(tmp_path / "x"), "--families", "fog"]) == 2
    assert "unknown distortion families" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
def test_batch_on_ray_matches_local(micro_model_dir, tmp_path):
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    args = [
        EXAMPLE,
        "examples/chelsea.jpg",
        "--model",
        str(micro_model_dir),
        "--box",
        "0,0,50,50",
        "--quiet",
        "--tasks",
        "quality",
    ]
    assert main(["assess", *args, "--output", str(local)]) == 0
    assert main(["assess", *args, "--output", str(on_ray), "--ray"]) == 0
    a = [json.loads(x) for x in local.read_text().splitlines()]
    b = [json.loads(x) for x in on_ray.read_text().splitlines()]
    assert [x["image"] for x in a] == [x["image"] for x in b]
    for x, y in zip(a, b, strict=True):
        assert x["rois"][0]["quality"] == pytest.approx(y["rois"][0]["quality"], abs=1e-5)
