"""Filling the feature cache before training: exactly the images the run will draw, in parallel."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def short_run(tiny_train_config, tmp_path: Path):
    from seagull.train.config import load_config

    return load_config(
        tiny_train_config(
            tmp_path,
            "pre",
            max_steps=3,
            batch_images=2,
            feature_cache="disk",
            cache_dir=str(tmp_path / "cache"),
            data__val_max_rois=4,
        )
    )


def test_only_the_drawn_training_images_and_the_scored_val_images(short_run) -> None:
    from seagull.train.data import load_images, step_indices
    from seagull.train.precompute import images_to_encode
    from seagull.train.trainer import _val_images

    train = load_images(short_run.data.train, short_run.data.train_split)
    drawn = {train[i].key for s in range(3) for i in step_indices(len(train), short_run.seed, s, 2)[1]}
    val = _val_images(short_run)
    got = [ref.key for ref in images_to_encode(short_run)]
    assert len(got) == len(set(got))
    assert drawn <= set(got) and len(drawn) < len(train)
    # validation scores the first 4 labelled ROIs: the first two val images (3 ROIs each) hold them
    assert [len(ref.record.rois) for ref in val[:2]] == [3, 3] and len(val) > 2
    assert set(got) - drawn == {ref.key for ref in val[:2]} - drawn


@pytest.mark.slow
def test_precomputed_entries_are_what_training_reads(short_run) -> None:
    from seagull.train.features import FeatureStore
    from seagull.train.precompute import images_to_encode, precompute_features
    from seagull.train.trainer import build_for_training, load_tokenizer_for

    n = precompute_features(short_run, workers=2, progress=False)
    refs = images_to_encode(short_run)
    assert n == len(refs)
    store = FeatureStore(
        build_for_training(short_run, load_tokenizer_for(short_run)), "disk", short_run.cache_dir
    )
    for ref in refs:
        store.get(ref)
    assert store.hits == len(refs) and store.misses == 0
