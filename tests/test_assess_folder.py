"""Folder batches: photos decoded ahead in threads and assessed a batch per model pass give the records of
the one-at-a-time loop, in input order, with per-photo errors; a JSONL output resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seagull.assess import Assessor
from seagull.assess.batch import (
    ItemOptions,
    assess_folder,
    assess_local,
    expand_inputs,
    resume_output,
)
from seagull.cli import main
from seagull.errors import ConfigError
from seagull.roi import WHOLE_IMAGE, request_rois, whole_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# (height, width) of the generated photos: mixed sizes and shapes, as a real folder has
SIZES = [(120, 180), (300, 200), (64, 64), (240, 320), (90, 400), (200, 150), (160, 160)]


def whole(image: np.ndarray) -> list:
    return [whole_image(image.shape)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Crops of the example photo resized to mixed sizes, one unreadable file in the middle."""
    folder = tmp_path_factory.mktemp("photos")
    src = Image.open(EXAMPLES / "coffee.jpg").convert("RGB")
    paths = []
    for k, (h, w) in enumerate(SIZES):
        crop = src.crop((k * 20, k * 10, k * 20 + 400, k * 10 + 300)).resize((w, h))
        paths.append(folder / f"p{k}.{'png' if k % 2 else 'jpg'}")
        crop.save(paths[-1])
    (folder / "p3_broken.jpg").write_bytes(b"not a jpeg")
    return expand_inputs([folder])


@pytest.fixture(scope="module")
def shipped() -> Assessor:
    return Assessor()


def by_roi(record: dict) -> dict:
    return {r["name"]: r for r in record["rois"]}


def assert_same_records(got: list[dict], want: list[dict]) -> None:
    assert [g["image"] for g in got] == [w["image"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert ("error" in g) == ("error" in w), (g, w)
        if "error" in w:
            assert g["error"] == w["error"]
            continue
        assert (g["width"], g["height"]) == (w["width"], w["height"])
        assert by_roi(g).keys() == by_roi(w).keys()
        for name, r in by_roi(w).items():
            s = by_roi(g)[name]
            assert s["bbox"] == r["bbox"]
            for key in ("quality", "importance"):
                assert (s.get(key) is None) == (r.get(key) is None)
                if r.get(key) is not None:
                    assert s[key] == pytest.approx(r[key], abs=1e-5)
                    assert s[f"{key}_level"] == r[f"{key}_level"]
            for a, b in zip(s["distortions"], r["distortions"], strict=True):
                assert a["type"] == b["type"] and a["present"] == b["present"]
                assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)


ALL_TASKS = ItemOptions(whole, ("quality", "importance", "distortion"), False)


@pytest.fixture(scope="module")
def loop_records(shipped, photos) -> list[dict]:
    return list(assess_local(shipped, photos, ALL_TASKS, progress=False))


@pytest.mark.parametrize(("batch_size", "lanes"), [(1, 1), (3, 2), (8, 1), (2, 3)])
def test_folder_batch_equals_the_one_at_a_time_loop(shipped, photos, loop_records, batch_size, lanes):
    want = loop_records
    got = list(
        assess_folder(shipped, photos, ALL_TASKS, batch_size=batch_size, decode_threads=2, lanes=lanes)
    )
    assert_same_records(got, want)
    errors = [Path(g["image"]).name for g in got if "error" in g]
    assert errors == ["p3_broken.jpg"] and "ImageLoadError" in got[4]["error"]


def test_folder_batch_with_every_region_equals_the_loop(micro_assessor, photos):
    from seagull.proposals import every_region

    def every(image):
        return request_rois(image, [], [], None, lambda _: every_region(image))

    options = ItemOptions(every, ("quality",), False)
    want = list(assess_local(micro_assessor, photos[:4], options, progress=False))
    got = list(assess_folder(micro_assessor, photos[:4], options, batch_size=2, lanes=2))
    assert any(len(w.get("rois", [])) > 1 for w in want)
    assert_same_records(got, want)


class FailsOnePhoto:
    """Its batch pass fails whenever a 64-px-wide photo is in it; alone, only that photo fails."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def assess_batch(self, images, rois_per_image, tasks, text):
        self.batches.append(len(images))
        if any(im.shape[1] == 64 for im in images):
            raise RuntimeError("boom")
        return [[] for _ in images]

    def assess(self, image, rois, tasks, text):
        return self.assess_batch([image], [rois], tasks, text)[0]


def test_a_failing_pass_fails_only_its_own_photo(photos):
    fake = FailsOnePhoto()
    out = list(assess_folder(fake, photos, ItemOptions(whole, ("quality",), False), batch_size=4, lanes=1))
    assert [Path(o["image"]).name for o in out] == [p.name for p in photos]
    errors = {Path(o["image"]).name: o["error"] for o in out if "error" in o}
    assert set(errors) == {"p2.jpg", "p3_broken.jpg"}
    assert "RuntimeError: boom" in errors["p2.jpg"]
    # batches of 4 photos: the first pass failed and its photos went one at a time; the second batch
    # holds the broken file, which never reaches the model
    assert fake.batches == [4, 1, 1, 1, 1, 3]


def test_lanes_divide_the_cores_and_the_threads_are_given_back(photos, monkeypatch):
    import torch

    from seagull.assess import batch

    seen = []

    class Threads(FailsOnePhoto):
        def assess_batch(self, images, rois_per_image, tasks, text):
            seen.append(torch.get_num_threads())
            return [[] for _ in images]

    monkeypatch.setattr(batch, "available_cores", lambda: 4)
    monkeypatch.setattr("seagull.workers.available_cores", lambda: 4)
    before = torch.get_num_threads()
    list(assess_folder(Threads(), photos, ItemOptions(whole, ("quality",), False), batch_size=2, lanes=None))
    assert set(seen) == {1}  # 4 lanes (one per core) x 1 thread
    list(assess_folder(Threads(), photos, ItemOptions(whole, ("quality",), False), batch_size=2, lanes=2))
    assert seen[-1] == 2  # 2 lanes x 2 threads
    assert torch.get_num_threads() == before


def test_folder_batch_refuses_a_batch_size_below_one(photos):
    with pytest.raises(ConfigError, match="at least 1"):
        list(assess_folder(FailsOnePhoto(), photos, ItemOptions(whole, ("quality",), False), batch_size=0))


def run(model: Path, folder: Path, out: Path, *extra: str) -> int:
    args = [str(folder), "--model", str(model), "--tasks", "quality", "--output", str(out), "--quiet"]
    return main(["assess", *args, *extra])


def read(out: Path) -> list[dict]:
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_cli_folder_whole_photo_by_default_and_resume(micro_model_dir, photos, tmp_path, capsys):
    folder = photos[0].parent
    full = tmp_path / "full.jsonl"
    # the broken file fails, the batch goes on
    assert run(micro_model_dir, folder, full, "--batch-size", "3") == 1
    records = read(full)
    assert [r["image"] for r in records] == [str(p) for p in photos]
    ok = [r for r in records if "error" not in r]
    assert len(ok) == len(SIZES)
    assert all([x["name"] for x in r["rois"]] == [WHOLE_IMAGE] for r in ok)
    assert all(r["rois"][0]["bbox"] == [0, 0, r["width"], r["height"]] for r in ok)

    # an interrupted run: three whole lines and half of the fourth
    lines = full.read_text().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_text("".join(lines[:3]) + lines[3][:20])
    capsys.readouterr()
    assert run(micro_model_dir, folder, part, "--resume") == 1
    assert "3 images already in" in capsys.readouterr().err
    resumed = read(part)
    assert [r["image"] for r in resumed] == [r["image"] for r in records]
    assert_same_records(resumed, records)

    # resuming a finished file assesses nothing and changes nothing
    before = part.read_bytes()
    assert run(micro_model_dir, folder, part, "--resume") == 0
    assert part.read_bytes() == before


def test_resume_needs_an_output_and_refuses_a_foreign_file(photos, tmp_path, capsys):
    assert main(["assess", str(photos[0].parent), "--resume", "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"image": "a.jpg"}\nhello\n')
    with pytest.raises(ConfigError, match="line 2 is not a record"):
        resume_output(foreign)
    assert resume_output(tmp_path / "missing.jsonl") == set()
