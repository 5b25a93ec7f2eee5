"""The model's input side (SeagullProcessor: images, masks, prompts, tokenizer, saved with the model)
and the one scorer: answer-word ids in context, and the Assessor and training validation give equal
numbers.

Two tokenizers: the project's byte-level BPE and a small SentencePiece model trained here, loaded the
way SEAGULL-7B's LLaMA tokenizer is (a ``tokenizer.model`` folder through ``load_tokenizer``) and set
to tokenise exactly as the SentencePiece library does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seagull import templates as T
from seagull.assess import Assessor
from seagull.errors import ModelError
from seagull.eval.agreement import sample_average_prf, type_set
from seagull.labels import (
    DISTORTION_TYPES,
    IMPORTANCE_LEVELS,
    QUALITY_LEVELS,
    SEVERITY_LEVELS,
    DistortionLabel,
)
from seagull.model import build_model
from seagull.model.processor import (
    PROCESSOR_CONFIG_NAME,
    QUALITY,
    SCORING_PROMPTS,
    AnswerIds,
    ImageConfig,
    SeagullProcessor,
    next_word_ids,
)
from seagull.model.tokenizer import load_tokenizer, train_sentencepiece, train_tokenizer
from seagull.records import RoiRecord, SampleRecord
from seagull.roi import Roi, box_to_mask, mask_bbox, mask_to_rle
from seagull.train.data import ImageRef
from seagull.train.validate import score_image, validate

spm = pytest.importorskip("sentencepiece")


def write_sentencepiece_tokenizer(folder: Path) -> None:
    """A LLaMA-style SentencePiece BPE (identity normaliser, spaces kept) on the template corpus."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(train_sentencepiece(800))
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "pad_token": "<unk>",
        "additional_special_tokens": [T.IMAGE_TOKEN, T.GLOBAL_TOKEN, T.LOCAL_TOKEN],
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def sentencepiece_tokenizer(folder: Path):
    """The folder loaded like SEAGULL-7B's, tokenising as SentencePiece itself does: a dummy "▁" before
    the text and every space a "▁" (the slow LLaMA tokenizer the released code used)."""
    from tokenizers import normalizers

    tok = load_tokenizer(folder)
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None
    return tok


@pytest.fixture(scope="module")
def sp_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spm")
    write_sentencepiece_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def sp_tok(sp_folder):
    return sentencepiece_tokenizer(sp_folder)


@pytest.fixture(scope="module", params=["project", "sentencepiece"])
def tok(request, sp_tok):
    return train_tokenizer() if request.param == "project" else sp_tok


def test_test_tokenizer_matches_the_sentencepiece_library(sp_folder, sp_tok):
    sp = spm.SentencePieceProcessor(model_file=str(sp_folder / "tokenizer.model"))
    for text in (" good", "The quality is good.", QUALITY.text().split(T.IMAGE_TOKEN)[0]):
        assert sp_tok(text, add_special_tokens=False)["input_ids"] == sp.encode(text)


def test_answer_ids_are_read_in_context_not_from_the_word_alone(sp_tok):
    """SentencePiece makes the space of " good" a piece of its own when the word stands alone, so
    the first token of the isolated word is "▁" for every level: scoring it would read one logit five
    times. In the prompt the space joins the word ("▁good"), and that is the token the model predicts."""
    proc = AnswerIds.read(sp_tok, sp_tok.convert_tokens_to_ids(T.IMAGE_TOKEN))
    isolated = [sp_tok(" " + w, add_special_tokens=False)["input_ids"] for w in QUALITY_LEVELS]
    assert {sp_tok.convert_ids_to_tokens(ids[0]) for ids in isolated} == {"▁"}
    assert [ids[0] for ids in isolated] != proc.quality_ids
    assert sp_tok.convert_ids_to_tokens(proc.quality_ids)[QUALITY_LEVELS.index("good")] == "▁good"
    assert len(set(proc.quality_ids)) == len(QUALITY_LEVELS)


def test_answer_ids_with_the_project_tokenizer():
    tok = train_tokenizer()
    proc = AnswerIds.read(tok, tok.convert_tokens_to_ids(T.IMAGE_TOKEN))
    assert [tok.decode([i]) for i in proc.quality_ids] == [f" {w}" for w in QUALITY_LEVELS]
    assert [tok.decode([i]) for i in proc.importance_ids] == [f" {w}" for w in IMPORTANCE_LEVELS]
    assert [tok.decode([i]) for i in proc.severity_ids] == [f" {w}" for w in SEVERITY_LEVELS]
    assert all(len(set(ids)) == len(DISTORTION_TYPES) for ids in proc.type_ids.values())
    assert tok.decode([proc.with_id]) == " With" and tok.decode([proc.clean_id]) == " No"
    with pytest.raises(ModelError, match="share first tokens"):
        next_word_ids(tok, -200, "ASSISTANT:", ["good", "good"])


def labelled_image(folder: Path, levels: list[str]) -> ImageRef:
    """A random 64x48 image with one labelled box ROI per quality level in ``levels``."""
    h, w = 48, 64
    arr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(folder / "img.png")
    boxes = [[2, 3, 20, 15], [30, 10, 30, 30], [0, 0, w, h]]
    rois = []
    for k, level in enumerate(levels):
        mask = box_to_mask(boxes[k], h, w)
        rois.append(
            RoiRecord(
                id=f"r{k}",
                rle=mask_to_rle(mask),
                bbox=list(mask_bbox(mask)),
                area=int(mask.sum()),
                source="test",
                quality=QUALITY_LEVELS.index(level) / 4 + 0.01 * k,
                quality_level=level,
                importance=0.3 * k,
                importance_level=IMPORTANCE_LEVELS[k],
                distortions=[DistortionLabel("blur", 0.2, "mild")] if k else [],
            )
        )
    record = SampleRecord("img", "img.png", "img.png", w, h, {"family": "none"}, rois)
    return ImageRef(folder, record)


def assessor_results(model, tok, ref: ImageRef):
    masks = [Roi(box_to_mask(r.bbox, ref.record.height, ref.record.width)) for r in ref.record.rois]
    return Assessor(model, tokenizer=tok).assess(str(ref.image_path), masks)


def test_assessor_and_validation_give_equal_numbers(tok, tmp_path):
    """Cached, left-padded Assessor batches and full right-padded validation prompts: the same scores up
    to float32 rounding (the two paths add the same terms in a different order), the same levels."""
    torch.manual_seed(0)
    model = build_model("seagull-test", tokenizer=tok).eval()
    ref = labelled_image(tmp_path, ["good", "bad", "fair"])
    want = assessor_results(model, tok, ref)
    got = score_image(model, ref, [0, 1, 2], SeagullProcessor.from_model(model, tok), None)
    for g, w in zip(got, want, strict=True):
        assert (g.quality.level, g.importance.level) == (w.quality_level, w.importance_level)
        assert g.quality.score == pytest.approx(w.quality, abs=1e-5)
        assert g.importance.score == pytest.approx(w.importance, abs=1e-5)
        assert list(g.quality.probs.values()) == pytest.approx(list(w.quality_probs.values()), abs=1e-5)
        for gd, wd in zip(g.distortions, w.distortions, strict=True):
            assert (gd.type, gd.present, gd.severity_level) == (wd.type, wd.present, wd.severity_level)
            assert gd.confidence == pytest.approx(wd.confidence, abs=1e-5)
            assert gd.severity == pytest.approx(wd.severity, abs=1e-5)


def test_validation_level_accuracy_uses_the_most_probable_word(tmp_path):
    """Labelled with the Assessor's own levels for two ROIs and another level for the third, the
    accuracy is 2/3; type F1 follows the Assessor's presence decisions."""
    tok = train_tokenizer()
    torch.manual_seed(1)
    model = build_model("seagull-test", tokenizer=tok).eval()
    probe = assessor_results(model, tok, labelled_image(tmp_path, ["good"] * 3))
    levels = [r.quality_level for r in probe]
    levels[2] = next(q for q in QUALITY_LEVELS if q != levels[2])
    ref = labelled_image(tmp_path, levels)
    res = validate(model, SeagullProcessor.from_model(model, tok), [ref], None)
    assert res.n_rois == 3 and res.quality_acc == pytest.approx(2 / 3)
    present = [type_set(d.type for d in r.distortions if d.present) for r in probe]
    true = [type_set([]), type_set(["blur"]), type_set(["blur"])]
    assert res.type_f1 == pytest.approx(sample_average_prf(true, present).f1)


# --------------------------------------------------------------------------- the processor


def test_processor_round_trip_through_its_folder(make_micro_model, micro_tokenizer, coffee, tmp_path):
    """save_pretrained writes processor_config.json and the tokenizer; from_pretrained gives a
    processor that prepares the same tensors and tokenises the same prompts."""
    model = make_micro_model()
    proc = SeagullProcessor.from_model(model, micro_tokenizer)
    proc.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / PROCESSOR_CONFIG_NAME).read_text())
    assert saved["image"]["size"] == model.config.vision["image_size"]
    assert saved["image_token_id"] == model.config.image_token_id
    back = SeagullProcessor.from_pretrained(tmp_path)
    assert back.to_dict() == proc.to_dict() and back.image_config == proc.image_config
    assert back.prompts == proc.prompts and back.answer_ids == proc.answer_ids
    assert back.severity_tokens == proc.severity_tokens
    a, b = proc.images([coffee]), back.images([coffee])
    assert torch.equal(a.pixel_values, b.pixel_values) and torch.equal(a.native[0], b.native[0])
    back.check_model(model)
    # The saved image settings are the ones used: another size in the file gives another tensor size.
    (tmp_path / PROCESSOR_CONFIG_NAME).write_text(
        json.dumps({**saved, "image": {**saved["image"], "size": 48}})
    )
    other = SeagullProcessor.from_pretrained(tmp_path)
    assert other.images([coffee]).pixel_values.shape[-2:] == (48, 48)
    with pytest.raises(ModelError, match="tower expects"):
        other.check_model(model)


def test_model_folders_carry_the_processor_and_the_assessor_uses_it(
    make_micro_model, micro_tokenizer, tmp_path
):
    model = make_micro_model()
    model.save_pretrained(tmp_path / "m", tokenizer=micro_tokenizer)
    assert (tmp_path / "m" / PROCESSOR_CONFIG_NAME).is_file()
    a = Assessor(tmp_path / "m")
    assert a.processor.to_dict() == SeagullProcessor.from_model(model, micro_tokenizer).to_dict()
    assert a.tokenizer is a.processor.tokenizer
    # A processor that prepares images for another tower is refused, not silently used.
    cfg, cfg_id = a.processor.image_config, a.processor.image_token_id
    wrong = SeagullProcessor(micro_tokenizer, ImageConfig(cfg.size * 2, cfg.mean, cfg.std), cfg_id)
    with pytest.raises(ModelError, match="use the processor saved with the model"):
        Assessor(model, processor=wrong)


def test_folders_without_processor_config_build_it_from_the_model_config(sp_folder, tmp_path):
    """The shipped model and the released SEAGULL-7B files have no processor_config.json: the processor
    comes from config.json (SEAGULL's, or the release's LLaVA config: the seagull-7b settings)."""
    from seagull.assess import DEFAULT_WEIGHTS_DIR
    from seagull.model import get_config

    assert not (DEFAULT_WEIGHTS_DIR / PROCESSOR_CONFIG_NAME).exists()
    shipped = SeagullProcessor.from_pretrained(DEFAULT_WEIGHTS_DIR)
    assert shipped.image_config == ImageConfig.of_model(get_config(DEFAULT_WEIGHTS_DIR))
    assert shipped.image_token_id == get_config(DEFAULT_WEIGHTS_DIR).image_token_id
    released = tmp_path / "SEAGULL-7B"
    released.mkdir()
    for f in sp_folder.iterdir():
        (released / f.name).write_bytes(f.read_bytes())
    llava = {
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": "llava",
        "mm_projector_type": "mlp2x_gelu",
    }
    (released / "config.json").write_text(json.dumps(llava))
    proc = SeagullProcessor.from_pretrained(released)
    assert proc.image_token_id == -200
    assert proc.image_config == ImageConfig(
        512, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    )
    assert -200 in proc.prompts[QUALITY] and set(proc.prompts) >= set(SCORING_PROMPTS)


def test_damaged_processor_config_is_a_model_error(micro_model_dir, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for f in micro_model_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    for text in ("{not json", json.dumps({"processor_class": "SeagullProcessor", "image": [1, 2]}), "[]"):
        (folder / PROCESSOR_CONFIG_NAME).write_text(text)
        with pytest.raises(ModelError, match=PROCESSOR_CONFIG_NAME):
            SeagullProcessor.from_pretrained(folder)


def test_image_preprocessing_is_the_released_one(coffee):
    """Normalised at native size with the tower's mean and std, then the whole image stretched to the
    tower's size with antialiased bilinear interpolation; masks become bool tensors."""
    cfg = ImageConfig(64, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    proc = SeagullProcessor(None, cfg, -200)
    got = proc.images([coffee, coffee[:50, :70]])
    x = torch.from_numpy(coffee.copy()).permute(2, 0, 1).float() / 255
    want = (x - torch.tensor(cfg.mean)[:, None, None]) / torch.tensor(cfg.std)[:, None, None]
    assert torch.allclose(got.native[0], want, atol=1e-6) and got.native[1].shape == (3, 50, 70)
    resized = torch.nn.functional.interpolate(want[None], size=(64, 64), mode="bilinear", antialias=True)
    assert got.pixel_values.shape == (2, 3, 64, 64) and torch.allclose(
        got.pixel_values[0], resized[0], atol=1e-6
    )
    masks = proc.masks([np.ones((1, 4, 5), dtype=np.uint8), [np.zeros((4, 5))]])
    assert [m.dtype for m in masks] == [torch.bool] * 2 and [tuple(m.shape) for m in masks] == [(1, 4, 5)] * 2
