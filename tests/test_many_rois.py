"""Many ROIs on one image: the Assessor works through them in chunks (memory does not grow with their
number), the CLI keeps them as bounding-box crops and refuses more than --max-rois with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from seagull.assess import Assessor
from seagull.assess.commands import DEFAULT_MAX_ROIS
from seagull.assess.roi_list import RoiList
from seagull.cli import main
from seagull.errors import ModelError
from seagull.roi import Roi, box_to_mask, polygon_to_mask

MISSING_MODEL = "/nonexistent/model"  # a refusal must come before the model is loaded
H, W = 48, 64


def photo(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def many_rois(n: int) -> list[Roi]:
    rng = np.random.default_rng(1)
    rois = []
    for i in range(n):
        x, y = int(rng.integers(0, W - 8)), int(rng.integers(0, H - 8))
        w, h = int(rng.integers(4, W - x + 1)), int(rng.integers(4, H - y + 1))
        if i % 3 == 2:
            mask = polygon_to_mask([[x, y, x + w, y, x, y + h]], H, W)
        else:
            mask = box_to_mask([x, y, w, h], H, W)
        rois.append(Roi(mask, f"r{i}"))
    return rois


def records(results) -> list[dict]:
    return [r.to_dict() for r in results]


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert [r["name"] for r in a] == [r["name"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["bbox"] == y["bbox"] and x["area"] == y["area"]
        assert x["quality"] == pytest.approx(y["quality"], abs=1e-5)
        assert x["importance"] == pytest.approx(y["importance"], abs=1e-5)
        assert [d["confidence"] for d in x["distortions"]] == pytest.approx(
            [d["confidence"] for d in y["distortions"]], abs=1e-5
        )


class Recording:
    """Wraps ``model.encode_regions`` and records how many masks each call got."""

    def __init__(self, model) -> None:
        self.model, self.calls = model, []
        self.original = model.encode_regions

    def __call__(self, enc, masks):
        self.calls.append(sum(len(m) for m in masks))
        return self.original(enc, masks)


# --------------------------------------------------------------------------- the compact list


def test_roi_list_gives_back_every_mask_exactly():
    rois = many_rois(12)
    rois.append(Roi(np.eye(H, W, dtype=bool), "diagonal"))
    packed = RoiList(rois)
    assert len(packed) == len(rois) and packed.names == [r.name for r in rois]
    for a, b in zip(rois, packed, strict=True):
        assert b.name == a.name and b.source == a.source
        assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(packed[-1].mask, rois[-1].mask)
    # boxes are kept as a corner and a size; only the irregular crops are stored
    assert packed.nbytes < sum(r.mask.nbytes for r in rois) / 4


# --------------------------------------------------------------------------- the Assessor's chunks


def test_chunked_assessment_equals_one_pass(micro_model, micro_tokenizer):
    image, rois = photo(), many_rois(11)
    whole = Assessor(micro_model, tokenizer=micro_tokenizer, roi_chunk=64)
    chunked = Assessor(micro_model, tokenizer=micro_tokenizer, roi_chunk=3)
    assert_same(records(chunked.assess(image, rois)), records(whole.assess(image, rois)))
    # a compact list gives what the plain list gives
    assert_same(records(chunked.assess(image, RoiList(rois))), records(whole.assess(image, rois)))


def test_no_pass_sees_more_than_one_chunk_of_masks(micro_model, micro_tokenizer, monkeypatch):
    assessor = Assessor(micro_model, tokenizer=micro_tokenizer, roi_chunk=4)
    rec = Recording(assessor.model)
    monkeypatch.setattr(assessor.model, "encode_regions", rec)
    results = assessor.assess(photo(), many_rois(10))
    assert len(results) == 10 and rec.calls == [4, 4, 2]


def test_chunks_span_images_of_a_batch(micro_model, micro_tokenizer):
    images, rois = [photo(0), photo(1), photo(2)], [many_rois(3), [], many_rois(4)]
    chunked = Assessor(micro_model, tokenizer=micro_tokenizer, roi_chunk=2)
    whole = Assessor(micro_model, tokenizer=micro_tokenizer, roi_chunk=64)
    got, want = chunked.assess_batch(images, rois), whole.assess_batch(images, rois)
    assert [len(r) for r in got] == [3, 0, 4]
    for g, w in zip(got, want, strict=True):
        assert_same(records(g), records(w))


def test_a_joint_mfe_sees_all_rois_of_an_image_together(make_micro_model, micro_tokenizer, monkeypatch):
    model = make_micro_model(mfe={"roi_interaction": "joint"})
    assessor = Assessor(model, tokenizer=micro_tokenizer, roi_chunk=2)
    rec = Recording(assessor.model)
    monkeypatch.setattr(assessor.model, "encode_regions", rec)
    assessor.assess(photo(), many_rois(5))
    assert rec.calls == [5]  # ROIs of one image attend to each other: splitting them would change them


def test_roi_chunk_must_be_positive(micro_model, micro_tokenizer):
    with pytest.raises(ModelError, match="roi_chunk"):
        Assessor(micro_model, tokenizer=micro_tokenizer, roi_chunk=0)


# --------------------------------------------------------------------------- the CLI's cap


def roi_file(path, n: int):
    path.write_text(json.dumps([{"box": [i % 20, i % 10, 8, 8], "name": f"b{i}"} for i in range(n)]))
    return path


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo()).save(path)
    return path


def test_more_rois_than_the_cap_are_refused_before_the_model_loads(tmp_path, image_file, capsys):
    rois = roi_file(tmp_path / "rois.json", DEFAULT_MAX_ROIS + 1)
    assert main(["assess", str(image_file), "--rois", str(rois), "--model", MISSING_MODEL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"{DEFAULT_MAX_ROIS + 1} ROIs given for one image" in err[0]
    assert f"limit of {DEFAULT_MAX_ROIS} (--max-rois)" in err[0] and "--max-rois 1001" in err[0]


def test_max_rois_lowers_and_raises_the_cap(tmp_path, image_file, capsys, micro_model_dir):
    rois = roi_file(tmp_path / "rois.json", 6)
    argv = ["assess", str(image_file), "--rois", str(rois), "--json", "--model", str(micro_model_dir)]
    assert main([*argv, "--max-rois", "5"]) == 2
    assert "6 ROIs given for one image, over the limit of 5" in capsys.readouterr().err
    assert main([*argv, "--max-rois", "6"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rois"]) == 6


def test_duplicate_names_are_listed_once_each(tmp_path, image_file, capsys):
    entries = [{"box": [0, 0, 8, 8], "name": n} for n in ("a", "b", "a", "c", "b", "a")]
    (tmp_path / "rois.json").write_text(json.dumps(entries))
    argv = ["assess", str(image_file), "--rois", str(tmp_path / "rois.json"), "--model", MISSING_MODEL]
    assert main(argv) == 2
    assert "ROI names must be unique, got ['a', 'b']" in capsys.readouterr().err
