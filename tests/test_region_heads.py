"""Auxiliary region heads: label encoding, the loss, and a training run with a head-only warm-up."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from helpers import labelled_roi
from seagull.train.region_heads import GROUPS, IGNORE, RegionHeads, region_loss, region_targets


def test_targets_encode_levels_and_per_type_severity() -> None:
    t = region_targets(
        [labelled_roi("bad", "essential", ("noise", "extreme")), labelled_roi("excellent", None)]
    )
    assert t.shape == (2, len(GROUPS))
    assert t[0, :2].tolist() == [0, 4]
    # blur, colorfulness, compression, contrast, exposure, noise: absent = 0, extreme = 5
    assert t[0, 2:].tolist() == [0, 0, 0, 0, 0, 5]
    assert t[1, :2].tolist() == [4, IGNORE] and t[1, 2:].tolist() == [0] * 6


def test_loss_skips_missing_labels_and_is_learnable() -> None:
    torch.manual_seed(0)
    heads = RegionHeads(8)
    g, loc = torch.randn(16, 8), torch.randn(16, 8)
    rois = [labelled_roi("bad" if g[i, 0] > 0 else "excellent", None) for i in range(16)]
    targets = region_targets(rois)
    opt = torch.optim.Adam(heads.parameters(), lr=0.05)
    first = float(region_loss(heads(g, loc), targets))
    for _ in range(100):
        opt.zero_grad()
        loss = region_loss(heads(g, loc), targets)
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and float(loss) < first / 2


@pytest.mark.slow
def test_run_with_head_warm_up_logs_both_losses(tiny_train_config, tmp_path: Path) -> None:
    from seagull.model import load_model
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    cfg = load_config(
        tiny_train_config(
            tmp_path,
            "aux",
            max_steps=6,
            val_every=100,
            val_at_start=False,
            log_every=1,
            aux={"weight": 1.0, "warmup_steps": 3, "image_dropout": 0.5},
        ),
        output_dir=str(tmp_path / "out"),
    )
    result = train(cfg)
    with (tmp_path / "out" / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    assert all(r["aux_loss"] for r in rows)
    assert [bool(r["lm_loss"]) for r in rows] == [False] * 3 + [True] * 3
    model = load_model(result.final_dir)
    assert not any(k.startswith("heads") or "region_heads" in k for k in model.state_dict())


def test_answer_word_weights_and_the_weighted_loss(micro_tokenizer) -> None:
    from seagull.train.step import answer_word_weights, weighted_lm_loss

    tok = micro_tokenizer
    w = answer_word_weights(tok, len(tok), 5.0)
    good = tok(" good", add_special_tokens=False)["input_ids"]
    the = tok(" the", add_special_tokens=False)["input_ids"]
    assert w[good].tolist() == [5.0] * len(good) and w[the].tolist() == [1.0] * len(the)
    torch.manual_seed(0)
    logits = torch.randn(2, 6, len(tok))
    labels = torch.full((2, 6), IGNORE)
    labels[:, 3:] = torch.tensor([the[0], good[0], the[0]])
    plain = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, len(tok)), labels[:, 1:].reshape(-1))
    assert weighted_lm_loss(logits, labels, torch.ones(len(tok))) == pytest.approx(float(plain), rel=1e-5)
    assert weighted_lm_loss(logits, labels, w) != pytest.approx(float(plain), rel=1e-3)
