"""Within-photo ranking: the pairs, the loss, and its use in a training step (heads and LM score)."""

from __future__ import annotations

import torch

from seagull.train.ranking import pairwise_rank_loss, rankable, ranked_pairs


def test_pairs_stay_inside_one_photo_and_respect_the_margin() -> None:
    truth = torch.tensor([0.9, 0.5, 0.88, 0.2, 0.6])
    group = torch.tensor([0, 0, 0, 1, 1])
    pairs = {tuple(p) for p in ranked_pairs(truth, group, margin=0.05).tolist()}
    # photo 0: 0.9 > 0.5 and 0.88 > 0.5; 0.9 vs 0.88 is under the margin; photo 1: 0.6 > 0.2
    assert pairs == {(0, 1), (2, 1), (4, 3)}
    assert rankable([0.9, 0.88]) == [] and rankable([0.9, 0.88, 0.5]) == [0, 1, 2]


def test_loss_is_low_when_ordered_high_when_reversed_and_none_without_pairs() -> None:
    truth = torch.tensor([0.9, 0.4])
    group = torch.tensor([0, 0])
    right = pairwise_rank_loss(torch.tensor([0.8, 0.3]), truth, group)
    wrong = pairwise_rank_loss(torch.tensor([0.3, 0.8]), truth, group)
    assert right is not None and wrong is not None and float(right) < 0.01 < 4.0 < float(wrong)
    assert pairwise_rank_loss(torch.tensor([0.8, 0.3]), truth, torch.tensor([0, 1])) is None


def test_gradient_descent_on_the_loss_orders_the_scores() -> None:
    torch.manual_seed(0)
    truth = torch.rand(12)
    group = torch.arange(12) // 4
    logits = torch.zeros(12, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        loss = pairwise_rank_loss(torch.sigmoid(logits), truth, group)
        loss.backward()
        opt.step()
    pairs = ranked_pairs(truth, group)
    s = torch.sigmoid(logits).detach()
    assert len(pairs) > 5 and bool((s[pairs[:, 0]] > s[pairs[:, 1]]).all())


def test_training_step_ranks_with_the_assessors_quality_prompt(
    micro_model, micro_tokenizer, tiny_synth_dataset
) -> None:
    """The LM ranking pass scores the same prompt the Assessor scores, and its loss reaches the MFE."""
    from seagull.model.processor import SeagullProcessor
    from seagull.train.data import ConversationDataset, collate, load_images
    from seagull.train.region_heads import RegionHeads
    from seagull.train.step import TrainStep, lm_quality_scores

    images = load_images([tiny_synth_dataset], "train")
    ds = ConversationDataset(
        images, micro_tokenizer, int(micro_model.config.image_token_id), convs_per_image=1, every_roi=True
    )
    # an image whose ROIs carry different quality labels (a distorted photo)
    items = [ds.item(i, 0) for i in range(len(ds))]
    items = [it for it in items if len(rankable([it.ref.record.rois[r].quality for r in it.rois])) >= 2][:2]
    assert items and all(len(it.rois) == len(it.ref.record.rois) for it in items)
    batch = collate(items, int(micro_tokenizer.pad_token_id))
    processor = SeagullProcessor.from_model(micro_model, micro_tokenizer)
    step = TrainStep(
        micro_model, heads=RegionHeads(micro_model.config.hidden_size), aux_weight=1.0, rank_weight=1.0,
        processor=processor,
    ).train()  # fmt: skip
    loss = step(batch)
    assert {"rank_heads_loss", "rank_lm_loss"} <= set(step.last_parts)
    loss.backward()
    grads = [p.grad for p in micro_model.mask_extractor.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)

    # the differentiable scores equal the Assessor's scorer on the same prompt (validation's path)
    from seagull.train.step import encode_batch
    from seagull.train.validate import score_image

    micro_model.eval()
    with torch.no_grad():
        scores, truth, group = lm_quality_scores(
            micro_model, batch, encode_batch(micro_model, batch, None), processor
        )
        it = items[0]
        ranked = [k for k in rankable([it.ref.record.rois[r].quality for r in it.rois])][:4]
        ref_scores = score_image(
            micro_model,
            it.ref,
            [it.rois[k] for k in ranked],
            processor,
            None,
        )
    first = scores[group == 0]
    assert torch.allclose(first, torch.tensor([s.quality.score for s in ref_scores]), atol=1e-5)


def test_images_of_an_unranked_folder_train_the_answers_but_not_the_order(
    micro_model, micro_tokenizer, tiny_synth_dataset
) -> None:
    """``data.train_ranked: false``: the folder's images give no ranking pairs, on the heads or the LM."""
    from seagull.model.processor import SeagullProcessor
    from seagull.train.data import ConversationDataset, collate, load_images
    from seagull.train.region_heads import RegionHeads
    from seagull.train.step import TrainStep

    step_args = dict(aux_weight=1.0, rank_weight=1.0)
    processor = SeagullProcessor.from_model(micro_model, micro_tokenizer)
    parts = {}
    for ranked in (True, False):
        images = load_images([tiny_synth_dataset], "train", ranked=[ranked])
        assert all(ref.ranked is ranked for ref in images)
        ds = ConversationDataset(
            images, micro_tokenizer, int(micro_model.config.image_token_id), convs_per_image=1, every_roi=True
        )
        items = [ds.item(i, 0) for i in range(len(ds))]
        items = [it for it in items if len(rankable([it.ref.record.rois[r].quality for r in it.rois])) >= 2][
            :2
        ]
        step = TrainStep(
            micro_model, heads=RegionHeads(micro_model.config.hidden_size), processor=processor, **step_args
        ).train()
        step(collate(items, int(micro_tokenizer.pad_token_id)))
        parts[ranked] = set(step.last_parts)
    assert {"rank_heads_loss", "rank_lm_loss"} <= parts[True]
    assert parts[False] == {"aux_loss", "lm_loss"}
