"""The evaluation suites by name (``seagull eval --suite``): what each checks, what its data folder
holds and where its runner lives.

Runners are named ``"module:function"`` and imported when a suite runs, so that building the
command line does not import the image stack. Adding a suite is one line here:
``register_suite("name", "seagull.eval.module:run_name", "what it checks", "what --data holds")``.
Every runner but ``synthetic``'s is called as
``run(root, predictors, limit=..., journal=..., progress=..., bootstrap=..., margin=...) -> SuiteResult``
(``--bootstrap`` resamples for 95 % intervals, ``--pair-margin`` for within-photo pairs; a suite with
no intervals or pairs accepts and ignores them); a suite registered with ``splits=True`` has a fixed
photo split and is also given ``split=`` ("train", "val", "test" or "all" for ``--split``; without
``--split``, its ``default_split``); ``baselines`` replaces the suites' default baseline list;
``synthetic`` is the paper's protocol (:func:`seagull.eval.synthetic.evaluate_synthetic`) with its own
options.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..registry import Registry

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class SuiteInfo:
    name: str
    runner: str  # "module:function"
    description: str
    data: str  # what the --data folder holds
    splits: bool = False  # whether the runner takes split= (a fixed photo split; --split)
    default_split: str = "all"  # the split evaluated when --split is not given
    baselines: tuple[str, ...] | None = None  # default baselines (None: the suites' usual list)

    def load(self) -> Callable[..., Any]:
        """The runner function (its module is imported now)."""
        module, _, function = self.runner.partition(":")
        return getattr(importlib.import_module(module), function)


SUITES: Registry[SuiteInfo] = Registry("evaluation suite")


def register_suite(
    name: str,
    runner: str,
    description: str,
    data: str,
    splits: bool = False,
    default_split: str = "all",
    baselines: tuple[str, ...] | None = None,
) -> SuiteInfo:
    return SUITES.add(SuiteInfo(name, runner, description, data, splits, default_split, baselines))


def list_suites() -> tuple[str, ...]:
    """Names of the registered suites, ``synthetic`` first."""
    return SUITES.names()


def get_suite(name: str) -> SuiteInfo:
    return SUITES.get(name)


register_suite(
    SYNTHETIC,
    "seagull.eval.synthetic:evaluate_synthetic",
    "the paper's protocol: SRCC/PLCC, level accuracy, sample-average P/R/F1 against per-ROI labels",
    "synthetic dataset folder(s) written by seagull synth",
)
register_suite(
    "cuhk",
    "seagull.eval.suites:run_cuhk",
    "blurred region vs its sharp complement per photo; whole image vs MOS",
    "labels.csv, images and blur masks (255 = blurred)",
    splits=True,
)
register_suite(
    "konstanz",
    "seagull.eval.suites:run_konstanz",
    "quality and severity vs distortion level on SRC31 ladders; a distorted patch pasted into the reference",
    "labels.csv and the ladder images",
)
register_suite(
    "tid2013",
    "seagull.eval.suites:run_tid2013",
    "sanity checks on four TID2013 fragments with MOS",
    "mos.csv, distorted_images/ and reference_images/",
)
register_suite(
    "regions", "seagull.eval.worse_region:run_regions", "which region looks worse?", "clean photos"
)
register_suite(
    "mos",
    "seagull.eval.mos:run_mos",
    "whole-photo quality vs people's MOS: SRCC, KRCC, PLCC and RMSE after a logistic fit, bootstrap intervals",
    "a human-rated folder written by seagull data mos",
    splits=True,
    default_split="test",
    # the ROI is the whole photo: whole_brisque would repeat brisque, constant gives no number
    baselines=("brisque", "niqe", "piqe", "laplacian_var", "blur_effect", "hf_ratio"),
)
