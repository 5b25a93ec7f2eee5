"""Bad training configurations fail at start with a message naming the problem and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seagull.errors import ConfigError


def test_tiny_config_loads(tmp_path: Path, tiny_train_config) -> None:
    from seagull.train.config import load_config

    cfg = load_config(tiny_train_config(tmp_path, "cfg"), overrides=["optim.lr=0.01", "max_steps=3"])
    assert cfg.optim.lr == 0.01 and cfg.max_steps == 3 and cfg.parts.lm == "full"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data__train": ["does/not/exist"]}, "does not exist"),
        ({"data__train": []}, "data.train is empty"),
        ({"data__train_split": "nosuchsplit"}, "no records in split 'nosuchsplit'"),
        ({"parts__lm": "adapter"}, "parts.lm must be one of"),
        ({"parts__tower": True}, "tower stays frozen in stages 1 and 2"),
        ({"mixed_precision": "fp16"}, "fp16 needs a CUDA GPU"),
        ({"deepspeed": "nope.json"}, "deepspeed config"),
        ({"data__task_mix": {"quality": 0}}, "positive sum"),
        ({"data__task_mix": {"beauty": 1}}, "unknown task"),
        ({"learning_rate": 1}, "unknown option"),
        ({"feature_cache": "disk"}, "cache_dir"),
        ({"parts": {"mfe": False, "projector": False, "lm": "frozen"}}, "nothing to train"),
    ],
)
def test_bad_configs_are_refused(tmp_path: Path, tiny_train_config, changes: dict, message: str) -> None:
    from seagull.train.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config(tiny_train_config(tmp_path, "cfg", **changes))


def test_deepspeed_refused_without_gpu(tmp_path: Path, tiny_train_config) -> None:
    from seagull.train.config import load_config

    zero2 = Path(__file__).resolve().parents[1] / "src" / "seagull" / "train" / "deepspeed" / "zero2.json"
    with pytest.raises(ConfigError, match="deepspeed"):
        load_config(tiny_train_config(tmp_path, "cfg", deepspeed=str(zero2)))


def test_wrong_schema_is_refused(tmp_path: Path, tiny_train_config) -> None:
    from seagull.train.config import load_config

    bad = tmp_path / "bad"
    (bad / "shards").mkdir(parents=True)
    (bad / "dataset.json").write_text(json.dumps({"counts": {}}))
    (bad / "shards" / "a.jsonl").write_text(json.dumps({"id": "x", "image": "a.png"}) + "\n")
    with pytest.raises(ConfigError, match="not a usable dataset"):
        load_config(tiny_train_config(tmp_path, "cfg", data__train=[str(bad)]))


def test_model_level_combinations_are_refused_before_training(tmp_path: Path, tiny_train_config) -> None:
    from seagull.train.config import load_config
    from seagull.train.trainer import train

    cfg = load_config(
        tiny_train_config(tmp_path, "cfg", parts__lm="lora", lora={"targets": ["qkv"]}),
        output_dir=str(tmp_path / "out"),
    )
    with pytest.raises(ConfigError, match="match no linear layer"):
        train(cfg)
    assert not (tmp_path / "out" / "checkpoints").exists()
    cfg.parts.lm = "full"
    cfg.parts.full_finetune_max_params = 1000
    with pytest.raises(ConfigError, match="full_finetune_max_params"):
        train(cfg)
    with pytest.raises(ConfigError, match="no complete checkpoint"):
        train(cfg, resume=True)
