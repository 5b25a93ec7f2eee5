"""Within-photo pair accuracy (seagull.eval.pairs): hand-made cases, ties, the margin, strata,
bootstrap bounds, and its place in the synthetic evaluation's report."""

from __future__ import annotations

import json
import math

import pytest

from seagull.errors import ConfigError
from seagull.eval.pairs import (
    PairOutcome,
    image_pair_outcomes,
    labelled_pairs,
    order_outcome,
    pair_accuracy,
    strength_band,
    summarize,
)


def test_order_outcome_right_wrong_tie_and_missing():
    assert order_outcome(0.2, 0.8) == 1.0
    assert order_outcome(0.8, 0.2) == 0.0
    assert order_outcome(0.5, 0.5) == 0.5
    assert order_outcome(None, 0.5) is None
    assert order_outcome(float("nan"), 0.5) is None


def test_labelled_pairs_respect_the_margin_and_put_the_worse_first():
    labels = [0.9, 0.5, 0.93, None, 0.5]
    assert labelled_pairs(labels, 0.05) == [(1, 0), (4, 0), (1, 2), (4, 2)]
    # 0.9 vs 0.93 differ by 0.03: a pair only with a smaller margin; equal labels never pair up
    assert (0, 2) in labelled_pairs(labels, 0.02)
    assert (1, 4) not in labelled_pairs(labels, 0.0) and (4, 1) not in labelled_pairs(labels, 0.0)
    with pytest.raises(ConfigError):
        labelled_pairs(labels, -0.1)


def test_image_pair_outcomes_hand_made():
    labels = [1.0, 0.6, 0.8]  # pairs (1,0), (2,0), (1,2)
    right = image_pair_outcomes("p", labels, [0.9, 0.1, 0.5], {"family": "blur"})
    assert [o.outcome for o in right] == [1.0, 1.0, 1.0]
    mixed = image_pair_outcomes("p", labels, [0.5, 0.5, 0.9], {"family": "blur"})
    # (1,0): tie -> 0.5; (2,0): 0.9 > 0.5 -> 0; (1,2): 0.5 < 0.9 -> 1
    assert sorted(o.outcome for o in mixed) == [0.0, 0.5, 1.0]
    assert pair_accuracy(mixed).accuracy == pytest.approx(0.5)
    # a missing prediction drops its pairs only
    assert len(image_pair_outcomes("p", labels, [0.5, None, 0.9], {})) == 1


def test_strength_bands_are_thirds_of_the_ladder():
    assert [strength_band(s, 20) for s in (1, 7, 8, 14, 15, 20)] == [
        "weak",
        "weak",
        "medium",
        "medium",
        "strong",
        "strong",
    ]
    with pytest.raises(ConfigError):
        strength_band(0, 20)


def _outcomes():
    out = []
    for k in range(12):  # 12 photos, blur always right, noise right on even photos only
        out.append(PairOutcome(f"photo{k}", 1.0, (("family", "blur"),)))
        out.append(PairOutcome(f"photo{k}", 1.0 if k % 2 == 0 else 0.0, (("family", "noise"),)))
    return out


def test_summary_pooled_and_per_stratum():
    s = summarize(_outcomes(), ["family"], margin=0.05)
    assert s.pooled.n_pairs == 24 and s.pooled.n_photos == 12
    assert s.pooled.accuracy == pytest.approx(0.75)
    assert s.by["family"]["blur"].accuracy == 1.0
    assert s.by["family"]["noise"].accuracy == pytest.approx(0.5)
    assert s.pooled.ci is None  # no bootstrap asked
    d = s.to_dict()
    assert d["margin"] == 0.05 and d["by"]["family"]["noise"]["n_pairs"] == 12


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    s = summarize(_outcomes(), ["family"], bootstrap=300, seed=1)
    lo, hi = s.pooled.ci
    assert 0.5 <= lo <= s.pooled.accuracy <= hi <= 1.0
    assert lo < hi
    # all-right stratum: every resample gives 1
    assert s.by["family"]["blur"].ci == (1.0, 1.0)
    lo_n, hi_n = s.by["family"]["noise"].ci
    assert 0.0 <= lo_n < 0.5 < hi_n <= 1.0
    assert summarize(_outcomes(), ["family"], bootstrap=300, seed=1).pooled.ci == s.pooled.ci


def test_no_pairs_gives_nan_not_zero():
    s = summarize([], ["family"], bootstrap=50)
    assert s.pooled.n_pairs == 0 and math.isnan(s.pooled.accuracy) and s.pooled.ci is None


def test_synthetic_eval_reports_pair_accuracy(tmp_path, shared_data):
    """A tiny synthetic folder (one photo, local distortions): pairs in report.json and report.md."""
    from seagull.eval.report import write_protocol_report
    from seagull.eval.synthetic import evaluate_synthetic

    data = tmp_path / "set"
    _make_local_set(shared_data / "kodak" / "images", data)
    res = evaluate_synthetic(
        data, tmp_path / "rep", baselines=["laplacian_var", "constant"], bootstrap=50, include_fr=True
    )
    assert set(res.pairs) == {"laplacian_var", "constant", "fr_label"}
    fr = res.pairs["fr_label"].pooled
    assert fr.n_pairs > 0 and fr.accuracy == 1.0  # the label metric itself orders every pair right
    assert res.pairs["constant"].pooled.n_pairs == 0
    assert res.info["pair_margin"] == 0.05
    write_protocol_report(tmp_path / "rep", res.scores, res.labels, res.predictions, res.info, res.pairs)
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert doc["pair_accuracy"]["fr_label"]["pooled"]["accuracy"] == 1.0
    assert "blur" in doc["pair_accuracy"]["laplacian_var"]["by"]["family"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Within-photo pair accuracy (label margin 0.05)" in md and "by band:" in md


def _make_local_set(refs, out):
    """One Kodak photo at 256 px, blur and noise at two settings, each inside one ROI only."""
    from seagull.synth.pipeline import SynthConfig
    from seagull.synth.runner import run_synthesis

    cfg = SynthConfig(
        refs=refs, out=out, settings=2, max_side=256, families=("blur", "noise"), local_fraction=1.0, seed=0
    )
    run_synthesis(cfg, limit=1, progress=False)
