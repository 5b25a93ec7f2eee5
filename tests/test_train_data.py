"""Training data: items and batches of the tiny synthesised set."""

from __future__ import annotations

from pathlib import Path


def test_items_are_deterministic_and_follow_the_task_mix(micro_tokenizer, tiny_synth_dataset: Path) -> None:
    from seagull import templates as T
    from seagull.train.data import ConversationDataset, collate, load_images

    images = load_images([tiny_synth_dataset], "train")
    tokenizer = micro_tokenizer
    ds = ConversationDataset(images, tokenizer, 4, task_mix={"quality": 1.0}, convs_per_image=3, seed=1)
    a, b = ds.item(0, 0), ds.item(0, 0)
    assert [c.input_ids for c in a.conversations] == [c.input_ids for c in b.conversations]
    text = tokenizer.decode(a.conversations[0].input_ids)
    assert T.QUESTIONS["quality"] in text and T.QUESTIONS["importance"] not in text
    other = ConversationDataset(images, tokenizer, 4, task_mix={"distortion": 1.0}, convs_per_image=3, seed=1)
    assert T.QUESTIONS["distortion"] in tokenizer.decode(other.item(0, 0).conversations[0].input_ids)
    batch = collate([ds.item(i, 0) for i in range(2)], tokenizer.pad_token_id)
    assert batch.num_sequences == 6 and batch.seq_image == [0, 0, 0, 1, 1, 1]
    assert all(len(r) == 1 for r in batch.seq_rois)
    # Only answers are supervised.
    assert (batch.labels != -100).sum() < (batch.attention_mask == 1).sum() / 3


def test_step_order_reshuffles_per_epoch_and_covers_the_set() -> None:
    from seagull.train.data import step_indices

    seen = [step_indices(10, 0, s, 2) for s in range(5)]
    assert all(e == 0 for e, _ in seen)
    assert sorted(i for _, idx in seen for i in idx) == list(range(10))
    assert step_indices(10, 0, 5, 2)[0] == 1
    assert [step_indices(10, 0, s, 2)[1] for s in range(5)] != [
        step_indices(10, 0, s, 2)[1] for s in range(5, 10)
    ]


def test_train_repeat_lists_a_folder_several_times(tiny_synth_dataset) -> None:
    from seagull.train.data import load_images

    once = load_images([tiny_synth_dataset], "train")
    mixed = load_images([tiny_synth_dataset, tiny_synth_dataset], "train", repeat=[1, 3])
    assert len(mixed) == 4 * len(once)
    assert [r.key for r in mixed[: len(once)]] == [r.key for r in once]


def test_train_repeat_needs_one_count_per_folder(tiny_train_config, tmp_path) -> None:
    import pytest

    from seagull.errors import ConfigError
    from seagull.train.config import load_config

    with pytest.raises(ConfigError, match="train_repeat"):
        load_config(tiny_train_config(tmp_path, "rep", data__train_repeat=[1, 2]))


def test_train_ranked_needs_one_true_or_false_per_folder(tiny_train_config, tmp_path) -> None:
    import pytest

    from seagull.errors import ConfigError
    from seagull.train.config import load_config

    with pytest.raises(ConfigError, match="train_ranked"):
        load_config(tiny_train_config(tmp_path, "ranked", data__train_ranked=[True, False]))
    with pytest.raises(ConfigError, match="train_ranked"):
        load_config(tiny_train_config(tmp_path, "ranked2", data__train_ranked=["no"]))
    assert load_config(
        tiny_train_config(tmp_path, "ranked3", data__train_ranked=[False])
    ).data.train_ranked == [False]
