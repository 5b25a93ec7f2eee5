"""The registries of metrics, baselines, suites, vision towers and model configs: their metadata,
their lookups, and that command-line choices and report tables are read from them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pytest

from seagull.errors import ConfigError
from seagull.eval import baselines as B
from seagull.eval.commands import register
from seagull.eval.report import baselines_section
from seagull.eval.suite_registry import SYNTHETIC, get_suite, list_suites
from seagull.metrics import fr, nr
from seagull.model.config import get_config, get_named_config, list_configs
from seagull.model.vision import build_vision_tower, get_vision_kind, list_vision_kinds
from seagull.registry import Registry


@dataclass(frozen=True)
class _Entry:
    name: str


def test_registry_keeps_order_refuses_duplicates_and_names_the_choices():
    reg: Registry[_Entry] = Registry("widget")
    reg.add(_Entry("b"))
    reg.add(_Entry("a"))
    assert reg.names() == ("b", "a") and list(reg) == ["b", "a"] and len(reg) == 2
    assert "a" in reg and "c" not in reg
    assert reg.get("a") == _Entry("a")
    with pytest.raises(ConfigError, match="registered twice"):
        reg.add(_Entry("a"))
    with pytest.raises(ConfigError, match=r"unknown widget 'c'; choose one of b, a"):
        reg.get("c")


def test_nr_metric_orientation_matches_what_the_metric_measures():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    blurred = np.repeat(np.repeat(sharp[::8, ::8], 8, axis=0), 8, axis=1)
    mask = np.ones((96, 96), bool)
    for name in ("laplacian_variance", "masked_blur_effect", "hf_energy_ratio"):
        m = nr.get_nr_metric(name)
        assert m.takes == "mask" and m.distortion_type == "blur"
        better, worse = m.fn(sharp, mask), m.fn(blurred, mask)
        assert (better > worse) == m.higher_is_better, name
        lo, hi = m.value_range
        assert all(lo <= v and (hi is None or v <= hi) for v in (better, worse)), name
    assert nr.list_nr_metrics()[:3] == ("brisque", "niqe", "piqe")
    assert not nr.get_nr_metric("brisque").higher_is_better
    small = sharp[: nr.get_nr_metric("brisque").min_side - 1]
    assert np.isnan(nr.brisque(small))  # below its minimum side BRISQUE is undefined


def test_fr_metrics_are_similarities_with_their_minimum_side():
    assert fr.list_fr_metrics() == tuple(fr.FR_METRICS)
    assert fr.DEFAULT_FR_METRIC in fr.list_fr_metrics()
    info = fr.get_fr_metric_info("ms_ssim")
    assert info.higher_is_better and info.value_range == (0.0, 1.0) and info.min_side == 161
    assert fr.get_fr_metric("ms_ssim").min_side == info.min_side
    with pytest.raises(ConfigError, match="unknown full-reference metric 'psnr'"):
        fr.get_fr_metric_info("psnr")


def test_baselines_take_orientation_from_their_metric():
    assert B.list_baselines() == (
        "brisque",
        "niqe",
        "piqe",
        "laplacian_var",
        "blur_effect",
        "hf_ratio",
        "whole_brisque",
        "constant",
        "roi_area",
        "roi_center",
    )
    assert B.list_baselines(reads_pixels=False) == ("roi_area", "roi_center")
    lap = B.get_baseline("laplacian_var")
    assert lap.higher_is_better is nr.get_nr_metric("laplacian_variance").higher_is_better is True
    assert lap.distortion_type == "blur" and lap.task == "quality"
    built = B.make_baseline("blur_effect")
    assert built.name == "blur_effect" and built.higher_is_better is False and built.distortion_type == "blur"
    whole = B.make_baseline("whole_brisque")
    assert isinstance(whole, B.WholeImageBaseline) and whole.metric is nr.brisque
    assert B.get_baseline("roi_area").task == "importance"
    with pytest.raises(ConfigError, match="unknown baseline 'sharpness'"):
        B.make_baseline("sharpness")


def test_report_describes_the_registered_baselines_among_the_predictors():
    lines = baselines_section(["seagull", "niqe", "roi_center", "fr_label"])
    text = "\n".join(lines)
    assert "| niqe | quality | lower = better | 0 .. inf | - |" in text
    assert "| roi_center | importance | higher = more important | 0 .. 1 | - |" in text
    assert "seagull" not in text and "fr_label" not in text
    assert baselines_section(["seagull"]) == []


def test_suite_choices_on_the_command_line_come_from_the_registry():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    suite = next(
        a for a in parser._subparsers._group_actions[0].choices["eval"]._actions if a.dest == "suite"
    )
    assert tuple(suite.choices) == list_suites()
    assert list_suites()[0] == SYNTHETIC and {"cuhk", "konstanz", "tid2013"} <= set(list_suites())
    from seagull.eval.suites import run_konstanz

    assert get_suite("konstanz").load() is run_konstanz
    with pytest.raises(ConfigError, match="unknown evaluation suite"):
        get_suite("kadid")


def test_vision_kinds_and_named_configs():
    assert list_vision_kinds() == ("openclip_convnext", "efficientnet_lite0", "timm")
    assert get_vision_kind("efficientnet_lite0").load_package is not None
    assert get_vision_kind("timm").load_package is None
    cfg = dict(get_config("seagull-test").vision)
    with pytest.raises(ConfigError, match="unknown vision.kind 'vit'"):
        build_vision_tower({**cfg, "kind": "vit"})
    with pytest.raises(ConfigError, match="'package' exists only for efficientnet_lite0, not 'timm'"):
        build_vision_tower({**cfg, "kind": "timm", "weights": "package"})
    assert list_configs() == ("seagull-7b", "seagull-tiny", "seagull-test")
    assert get_named_config("seagull-7b").values["vision"]["kind"] in list_vision_kinds()
    assert get_config("seagull-test").vision["image_size"] == 64
    with pytest.raises(ConfigError, match="neither a named config"):
        get_config("seagull-huge")
