"""The cached frozen-feature path computes exactly what the model's own encoders compute."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seagull.errors import ConfigError


@pytest.mark.parametrize("lowlevel,rest", [(False, False), (True, False), (True, True)])
def test_cached_split_equals_model_encoders(
    make_micro_model, coffee: np.ndarray, lowlevel: bool, rest: bool
) -> None:
    from seagull.train.features import encode_frozen, supports_split, trainable_tokens

    model = make_micro_model(mfe={"lowlevel": lowlevel, "lowlevel_rest": rest})
    assert supports_split(model)
    h, w = coffee.shape[:2]
    masks = np.zeros((3, h, w), bool)
    masks[0, 10:200, 30:300] = True
    masks[1, h // 2 :, w // 2 :] = True
    masks[2, 5, 7] = True  # one pixel
    enc = model.encode_images([coffee])
    g, loc = model.encode_regions(enc, [masks])
    tokens, g2, loc2 = trainable_tokens(model, [encode_frozen(model, coffee, masks)])
    torch.testing.assert_close(tokens, enc.image_tokens, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g2, g, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loc2, loc, rtol=1e-5, atol=1e-5)
    # Gradients flow into the trainable parts only.
    (g2.sum() + loc2.sum() + tokens.sum()).backward()
    assert all(p.grad is not None for p in model.mask_extractor.local_proj.parameters())
    assert all(p.grad is not None for p in model.mm_projector.parameters())
    assert all(p.grad is None for p in model.vision_tower.parameters())
    if lowlevel:
        assert all(p.grad is not None for p in model.mask_extractor.lowlevel_proj.parameters())
    if rest:  # starts as a no-op (zero output layer), so only that layer has a gradient at first
        assert model.mask_extractor.rest_proj.layers[-1].weight.grad.abs().sum() > 0


def test_feature_cache_refused_for_released_mfe(make_micro_model) -> None:
    from seagull.train.config import TrainConfig
    from seagull.train.trainer import check_against_model

    model = make_micro_model(mfe={"local_mode": "released", "dim": 36})
    cfg = TrainConfig(feature_cache="memory")
    cfg.parts.lm = "full"
    with pytest.raises(ConfigError, match="feature_cache"):
        check_against_model(cfg, model)


def test_store_completes_an_entry_cached_without_lowlevel_statistics(
    make_micro_model, tiny_synth_dataset, tmp_path
) -> None:
    from seagull.train.data import load_images
    from seagull.train.features import FeatureStore

    plain = make_micro_model()
    rich = make_micro_model(mfe={"lowlevel": True})
    ref = load_images([tiny_synth_dataset], None, limit=1)[0]
    assert FeatureStore(plain, "disk", tmp_path).get(ref).lowlevel is None
    store = FeatureStore(rich, "disk", tmp_path)
    assert store.fingerprint == FeatureStore(plain, "disk", tmp_path).fingerprint
    got = store.get(ref)
    assert store.hits == 1 and got.lowlevel is not None and got.lowlevel.shape == (len(ref.record.rois), 32)
    again = FeatureStore(rich, "disk", tmp_path).get(ref)  # written back: read, not recomputed
    torch.testing.assert_close(again.lowlevel, got.lowlevel)
    # a model that also reads the statistics relative to the rest of the photo completes it again
    richer = FeatureStore(make_micro_model(mfe={"lowlevel": True, "lowlevel_rest": True}), "disk", tmp_path)
    wider = richer.get(ref).lowlevel
    assert wider.shape == (len(ref.record.rois), 48)
    torch.testing.assert_close(wider[:, :32], got.lowlevel, rtol=1e-4, atol=1e-4)


def test_store_recomputes_an_entry_cached_for_another_roi_set(
    micro_model, tiny_synth_dataset, tmp_path
) -> None:
    """A folder re-made with more ROIs per image must not reuse features of the old ROI set."""
    import dataclasses

    from seagull.train.data import load_images
    from seagull.train.features import FeatureStore

    ref = load_images([tiny_synth_dataset], None, limit=1)[0]
    model = micro_model
    FeatureStore(model, "disk", tmp_path).get(ref)
    fewer = dataclasses.replace(ref, record=dataclasses.replace(ref.record, rois=ref.record.rois[:1]))
    store = FeatureStore(model, "disk", tmp_path)
    got = store.get(fewer)
    assert store.misses == 1 and store.hits == 0 and got.local_stats.shape[0] == 1
