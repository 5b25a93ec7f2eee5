"""Protocol metrics against scipy and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from seagull.errors import SchemaError
from seagull.eval import agreement as M

PRED = [0.1, 0.4, 0.35, 0.8, 0.7, 0.2, 0.9, 0.55]
LAB = [0.0, 0.5, 0.3, 0.9, 0.6, 0.25, 1.0, 0.4]


def test_correlations_match_scipy():
    assert M.srcc(PRED, LAB) == pytest.approx(stats.spearmanr(PRED, LAB).statistic)
    assert M.plcc(PRED, LAB) == pytest.approx(stats.pearsonr(PRED, LAB).statistic)
    assert M.krcc(PRED, LAB) == pytest.approx(stats.kendalltau(PRED, LAB).statistic)


def test_correlations_drop_missing_pairs_and_flag_constants():
    p = [*PRED, None, float("nan")]
    y = [*LAB, 0.3, 0.2]
    assert M.srcc(p, y) == pytest.approx(stats.spearmanr(PRED, LAB).statistic)
    assert M.correlations(p, y).n == len(PRED)
    assert math.isnan(M.srcc([0.5] * 5, [0.1, 0.2, 0.3, 0.4, 0.5]))
    with pytest.raises(SchemaError, match="pair up"):
        M.srcc([1, 2], [1, 2, 3])


def test_logistic_plcc_recovers_a_sigmoid_relation():
    x = np.linspace(-3, 3, 40)
    y = M.logistic4(x, 5.0, 1.0, 0.3, 0.7)
    assert M.plcc_logistic(x, y) == pytest.approx(1.0, abs=1e-6)
    assert M.plcc(x, y) < 0.99  # the raw PLCC sees the nonlinearity
    # a decreasing relation is fitted too (falling curve)
    assert M.plcc_logistic(x, -y) == pytest.approx(1.0, abs=1e-6)


def test_sample_prf_hand_worked_multilabel():
    labels = [frozenset({"blur", "noise"}), frozenset({"blur"}), frozenset({"clean"})]
    preds = [frozenset({"blur"}), frozenset({"blur", "noise"}), frozenset({"clean"})]
    r = M.sample_average_prf(labels, preds)
    # sample 1: P 1, R 1/2, F1 2/3; sample 2: P 1/2, R 1, F1 2/3; sample 3: all 1
    assert r.precision == pytest.approx((1 + 0.5 + 1) / 3)
    assert r.recall == pytest.approx((0.5 + 1 + 1) / 3)
    assert r.f1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_empty_sets_clean_convention_and_strict_rules():
    # default convention: an undistorted region is {"clean"} on either side
    assert M.type_set([]) == frozenset({"clean"})
    assert M.type_set(["noise"]) == frozenset({"noise"})
    assert M.severity_set([("blur", "mild")]) == frozenset({"blur:mild"})
    # strict rules of sample_prf on empty sets
    assert M.sample_prf(frozenset(), frozenset()) == (1.0, 1.0, 1.0)
    assert M.sample_prf(frozenset({"blur"}), frozenset()) == (0.0, 0.0, 0.0)
    assert M.sample_prf(frozenset(), frozenset({"blur"})) == (0.0, 0.0, 0.0)
    # predicting "clean" for a blurred region scores 0; predicting blur on a clean one too
    labels = [M.type_set(["blur"]), M.type_set([])]
    preds = [M.type_set([]), M.type_set(["blur"])]
    assert M.sample_average_prf(labels, preds).f1 == 0.0


def test_unanswered_samples_are_skipped_not_scored_zero():
    labels = [frozenset({"blur"}), frozenset({"noise"})]
    r = M.sample_average_prf(labels, [frozenset({"blur"}), None])
    assert r.n == 1 and r.f1 == 1.0


def test_per_class_f1_table2():
    labels = [frozenset({"blur"}), frozenset({"blur"}), frozenset({"noise"}), frozenset({"clean"})]
    preds = [frozenset({"blur"}), frozenset({"noise"}), frozenset({"noise"}), frozenset({"blur"})]
    f = M.per_class_f1(labels, preds)
    # blur: tp 1, fp 1, fn 1 -> 0.5; noise: tp 1, fp 1, fn 0 -> 2/3; clean: tp 0, fn 1 -> 0
    assert f["blur"] == pytest.approx(0.5)
    assert f["noise"] == pytest.approx(2 / 3)
    assert f["clean"] == 0.0
    assert math.isnan(f["exposure"])  # never labelled nor predicted: left out of the average
    assert f["average"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)


def test_confusion_and_level_accuracy():
    classes = ("bad", "poor", "fair")
    m = M.confusion_matrix(["bad", "poor", "fair", "fair"], ["bad", "fair", "fair", None], classes)
    assert m.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    acc = M.level_accuracy(["bad", "poor", "fair"], ["poor", "poor", "bad"], classes)
    assert acc["exact"] == pytest.approx(1 / 3)
    assert acc["within_one"] == pytest.approx(2 / 3)


def test_bootstrap_interval_covers_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    y = x + rng.normal(scale=0.5, size=60)
    lo, hi = M.bootstrap_ci(M.srcc, x.tolist(), y.tolist(), n=200, seed=3)
    assert lo < M.srcc(x, y) < hi
    assert (lo, hi) == M.bootstrap_ci(M.srcc, x.tolist(), y.tolist(), n=200, seed=3)
    groups = [str(i // 3) for i in range(60)]
    glo, ghi = M.bootstrap_ci(M.srcc, x.tolist(), y.tolist(), n=200, groups=groups, seed=3)
    assert glo < ghi


def test_auc_hand_example():
    assert M.auc([3, 4], [1, 2]) == 1.0
    assert M.auc([1, 3], [2, 2]) == pytest.approx(0.5)
    assert M.auc([2], [2]) == pytest.approx(0.5)


def test_severity_of_named_distortions_counts_only_the_types_named() -> None:
    from seagull.eval.protocol import RoiLabel, named_severity_accuracy
    from seagull.region_prediction import DistortionPrediction, RegionPrediction

    def label(*sev: tuple[str, str]) -> RoiLabel:
        return RoiLabel("s", "r0", "g", 0.5, "fair", 0.1, "minor", tuple(t for t, _ in sev), sev)

    def pred(*dist: tuple[str, str]) -> RegionPrediction:
        return RegionPrediction(
            "r0", distortions=[DistortionPrediction(t, 0.9, severity_level=s) for t, s in dist]
        )

    labels = [
        label(("noise", "mild")),
        label(("blur", "severe"), ("noise", "slight")),
        label(("blur", "mild")),
    ]
    preds = [pred(("noise", "mild")), pred(("blur", "moderate")), pred(("noise", "mild"))]
    got = named_severity_accuracy(labels, preds)
    # named: noise mild (exact), blur severe -> moderate (one off); the third names another type
    assert got["n"] == 2 and got["exact"] == 0.5 and got["within_one"] == 1.0
