"""Training on a human-rated folder (``seagull data mos``): only the questions its labels answer are
asked, the region heads learn no "clean" from it, and its photos are ranked against each other by
their opinion scores (they share one scale), while synthesised photos stay ranked within the photo.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seagull.authentic import MosScale
from seagull.errors import ConfigError
from seagull.labels import DISTORTION_TYPES
from seagull.synth.mos import Columns, MosImport, ScoreFile, import_mos
from seagull.templates import QUESTIONS, drawn_conversation, judgment_type_question
from seagull.train.data import ConversationDataset, collate, load_images
from seagull.train.region_heads import IGNORE, region_targets
from seagull.train.step import ranking_rows

MOS = [1.2, 4.8, 3.0, 2.1, 4.1, 1.9, 3.6, 2.7]  # ACR 1-5, one per photo


@pytest.fixture(scope="module")
def mos_folder(tmp_path_factory) -> Path:
    """Eight random-texture photos with made-up opinion scores, every one in the train split."""
    tmp = tmp_path_factory.mktemp("train_mos")
    photos = tmp / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for k, mos in enumerate(MOS):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / f"m{k}.png")
        rows.append({"file": f"m{k}.png", "mos": mos})
    with (tmp / "train.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["file", "mos"])
        w.writeheader()
        w.writerows(rows)
    scores = [ScoreFile((tmp / "train.csv",), "train")]
    cfg = MosImport(photos, scores, Columns("file", "mos"), MosScale(1.0, 5.0), val_fraction=0.0)
    import_mos(cfg, tmp / "out")
    return tmp / "out"


def test_a_human_rated_folder_reads_as_quality_only_on_a_shared_scale(mos_folder, tiny_synth_dataset):
    mos = load_images([mos_folder], "train")
    assert len(mos) == len(MOS)
    assert all(ref.labelled == ("quality",) and ref.scale == str(mos_folder.resolve()) for ref in mos)
    synth = load_images([tiny_synth_dataset], "train")
    assert all(ref.labelled == ("quality", "importance", "distortion") and ref.scale is None for ref in synth)


def test_only_the_questions_its_labels_answer_are_asked(mos_folder, micro_tokenizer):
    """Under the default mix a photo rated for quality only is never asked for its distortions (which
    would teach "No obvious distortion." for every photo) nor a yes/no question about a type."""
    ref = load_images([mos_folder], "train")[0]
    roi = ref.record.rois[0]
    mix = {"quality": 2.0, "importance": 1.5, "distortion": 1.5, "judgment": 3.0}
    rng = random.Random(0)
    questions = []
    for _ in range(200):
        conv = drawn_conversation(0, roi, mix, 4, rng, ref.labelled)
        questions += [t["value"] for t in conv["turns"] if t["from"] == "human"]
    type_questions = {judgment_type_question(t) for t in DISTORTION_TYPES}
    assert not any(QUESTIONS["distortion"] in q or q in type_questions for q in questions)
    assert any(QUESTIONS["quality"] in q for q in questions)
    assert any(q.startswith("Is the quality") for q in questions)  # the yes/no quality questions stay

    with pytest.raises(ConfigError, match="label_tasks"):
        ConversationDataset([ref], micro_tokenizer, 0, task_mix={"distortion": 1.0, "importance": 1.0})


def test_region_heads_learn_no_clean_from_a_photo_without_distortion_labels(mos_folder):
    roi = load_images([mos_folder], "train")[0].record.rois[0]
    assert roi.distortions == []
    unlabelled = region_targets([roi], [("quality",)])[0]
    labelled = region_targets([roi])[0]
    assert int(unlabelled[0]) != IGNORE and int(unlabelled[1]) == IGNORE  # quality kept, no importance
    assert bool((unlabelled[2:] == IGNORE).all())
    assert bool((labelled[2:] == 0).all())  # a synthesised clean ROI is "absent" for every type


def _items(refs, micro_tokenizer):
    ds = ConversationDataset(refs, micro_tokenizer, 0, convs_per_image=1, every_roi=True)
    return [ds.item(i, 0) for i in range(len(ds))]


def test_human_rated_photos_are_ranked_across_the_batch_synthesised_ones_within_the_photo(
    mos_folder, tiny_synth_dataset, micro_tokenizer
):
    mos = load_images([mos_folder], "train")
    synth = load_images([tiny_synth_dataset], "train")
    single = [ref for ref in synth if len(ref.record.rois) == 1]
    several = [ref for ref in synth if len({r.quality for r in ref.record.rois}) >= 2][:1]
    items = _items(mos[:4] + several, micro_tokenizer)
    batch = collate(items, int(micro_tokenizer.pad_token_id))
    rows = ranking_rows(batch)
    mos_rows = [r for r in rows if r[0] < 4]
    # MOS 1.2, 4.8, 3.0, 2.1 -> one group of the four photos, their normalised scores as truth
    assert len(mos_rows) == 4 and len({g for *_, g in mos_rows}) == 1
    assert [round(q, 3) for _, _, q, _ in mos_rows] == [round((m - 1) / 4, 3) for m in MOS[:4]]
    synth_rows = [r for r in rows if r[0] == 4]
    assert synth_rows and {g for *_, g in synth_rows}.isdisjoint({g for *_, g in mos_rows})
    # synthesised photos with one ROI each are never ranked against each other (labels per reference)
    if len(single) >= 2:
        assert ranking_rows(collate(_items(single[:2], micro_tokenizer), 0)) == []
    # an unranked human-rated folder gives no rows; the per-image cap holds
    unranked = load_images([mos_folder], "train", ranked=[False])
    assert ranking_rows(collate(_items(unranked[:4], micro_tokenizer), 0)) == []
    assert all(sum(1 for r in ranking_rows(batch, per_image=1) if r[0] == b) <= 1 for b in range(5))


def test_a_training_step_on_human_rated_photos_orders_them(mos_folder, micro_model, micro_tokenizer):
    """The LM ranking pass gets pairs from photos of one human-rated set, and a few steps on them
    order the Assessor's quality score the way people did (on the training photos)."""
    from seagull.model.processor import SeagullProcessor
    from seagull.train.region_heads import RegionHeads
    from seagull.train.step import TrainStep, encode_batch, lm_quality_scores

    items = _items(load_images([mos_folder], "train"), micro_tokenizer)
    batch = collate(items, int(micro_tokenizer.pad_token_id))
    processor = SeagullProcessor.from_model(micro_model, micro_tokenizer)
    torch.manual_seed(0)
    step = TrainStep(
        micro_model,
        heads=RegionHeads(micro_model.config.hidden_size),
        aux_weight=1.0,
        rank_weight=1.0,
        processor=processor,
    ).train()
    opt = torch.optim.AdamW([p for p in step.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(12):
        opt.zero_grad()
        loss = step(batch)
        loss.backward()
        opt.step()
        first = first if first is not None else step.last_parts["rank_lm_loss"]
    assert {"rank_heads_loss", "rank_lm_loss"} <= set(step.last_parts)
    assert step.last_parts["rank_lm_loss"] < first
    micro_model.eval()
    with torch.no_grad():
        scores, truth, _ = lm_quality_scores(
            micro_model, batch, encode_batch(micro_model, batch, None), processor
        )
    from scipy.stats import spearmanr

    assert spearmanr(scores.numpy(), truth.numpy()).statistic > 0.5
