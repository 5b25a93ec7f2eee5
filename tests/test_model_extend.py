"""A trained model extended for fine-tuning (``load_model(extend=...)``) computes what it did before."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seagull.errors import ConfigError


@pytest.fixture(scope="module")
def lowlevel_model_dir(make_micro_model, micro_tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lowlevel") / "model"
    make_micro_model(mfe={"lowlevel": True}).save_pretrained(folder, tokenizer=micro_tokenizer)
    return folder


def test_rest_statistics_extension_starts_as_a_no_op(lowlevel_model_dir, coffee: np.ndarray) -> None:
    from seagull.model import load_model

    plain = load_model(lowlevel_model_dir)
    extended = load_model(lowlevel_model_dir, extend={"mfe": {"lowlevel_rest": True}})
    assert extended.mask_extractor.lowlevel_width == 48 and plain.mask_extractor.lowlevel_width == 32
    h, w = coffee.shape[:2]
    masks = np.zeros((2, h, w), bool)
    masks[0, : h // 2] = True
    masks[1, h // 2 :, : w // 3] = True
    with torch.no_grad():
        before = plain.encode_regions(plain.encode_images([coffee]), [masks])
        after = extended.encode_regions(extended.encode_images([coffee]), [masks])
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_only_declared_extensions_are_accepted(lowlevel_model_dir) -> None:
    from seagull.model import load_model

    with pytest.raises(ConfigError, match="can only be extended with mfe.lowlevel_rest"):
        load_model(lowlevel_model_dir, extend={"mfe": {"dim": 3}})


def test_rest_statistics_need_the_low_level_branch(make_micro_model) -> None:
    with pytest.raises(ConfigError, match="lowlevel_rest needs mfe.lowlevel"):
        make_micro_model(mfe={"lowlevel": False, "lowlevel_rest": True})
