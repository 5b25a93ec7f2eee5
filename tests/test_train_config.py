"""Bad training configurations fail at start with a message naming the problem and the fix; config
files resolve ``extends`` and their paths (relative to the file; overrides: to the working directory)
the same way for every stage, and the shipped configs and run records resolve as they always did."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from seagull.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PACKAGE_CONFIGS = REPO / "src" / "seagull" / "train" / "configs"
RUN_RECORDS = REPO / "configs" / "runs"
# What every config file resolved to before the run records left the package, paths relative to the
# repository (written with the loader of that time, from the repository root).
FROZEN = REPO / "tests" / "data" / "train_configs_resolved.json"


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


# --------------------------------------------------------------------------- config files


def _resolved(path: Path) -> dict:
    """The config file as the loader resolves it (not validated), paths relative to the repository."""
    from seagull.model.config import NAMED_CONFIGS
    from seagull.train.config import TrainConfig
    from seagull.train.config_base import build_config, read_config
    from seagull.train.tower.config import TowerConfig, is_tower_config

    if is_tower_config(yaml.safe_load(path.read_text())):
        cls, keys = TowerConfig, ("model", "output_dir", "train", "val")
    else:
        cls = TrainConfig
        keys = (
            "model",
            "tower",
            "tokenizer",
            "output_dir",
            "cache_dir",
            "deepspeed",
            "data.train",
            "data.val",
        )
    d = build_config(cls, read_config(cls, path), path).to_dict()
    d.pop("source")

    def rel(p: str) -> str:
        assert Path(p).is_absolute(), p  # a path in a file is resolved against the file
        return Path(os.path.relpath(p, REPO)).as_posix()

    for key in keys:
        *parents, leaf = key.split(".")
        node = d
        for k in parents:
            node = node[k]
        v = node[leaf]
        if v is not None and not (leaf == "model" and v in NAMED_CONFIGS):
            node[leaf] = [rel(x) for x in v] if isinstance(v, list) else rel(v)
    return d


def test_every_config_file_resolves_as_it_did_before_the_run_records_moved() -> None:
    frozen = json.loads(FROZEN.read_text())
    files = {p.stem: p for p in (*PACKAGE_CONFIGS.glob("*.yaml"), *RUN_RECORDS.glob("*.yaml"))}
    assert set(frozen) <= set(files)  # every file still exists (later run records are added)
    for stem, expected in frozen.items():
        assert _resolved(files[stem]) == expected, stem


def test_the_package_keeps_the_configs_a_user_starts_from_and_run_records_extend_another() -> None:
    assert sorted(p.name for p in PACKAGE_CONFIGS.glob("*.yaml")) == [
        "seagull_tiny.yaml",
        "stage1_synthetic.yaml",
        "stage2_finetune.yaml",
        "tiny_cpu.yaml",
        "tower_stage0.yaml",
    ]
    records = sorted(RUN_RECORDS.glob("*.yaml"))
    assert len(records) >= 10
    for record in records:
        raw = yaml.safe_load(record.read_text())
        assert (record.parent / raw["extends"]).is_file(), record
        assert len(raw) <= 10, f"{record.name} repeats its base"


def _write(path: Path, raw: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_paths_in_a_file_are_relative_to_it_and_overrides_to_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    from seagull.train.config import TrainConfig
    from seagull.train.config_base import build_config, read_config

    cfg_dir = tmp_path / "configs" / "exp"
    raw = {
        "model": "../models/m1",
        "tower": "tower.safetensors",
        "tokenizer": "tok",
        "output_dir": "out",
        "cache_dir": "../cache",
        "deepspeed": "/abs/zero2.json",
        "data": {"train": ["../data/a", "/abs/b"], "val": "../data/v"},
    }
    path = _write(cfg_dir / "run.yaml", raw)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def load(overrides=(), **fields) -> TrainConfig:
        return build_config(TrainConfig, read_config(TrainConfig, path, list(overrides), fields), path)

    cfg = load()
    assert cfg.model == str(tmp_path / "configs" / "models" / "m1")
    assert cfg.tower == cfg_dir / "tower.safetensors" and cfg.tokenizer == str(cfg_dir / "tok")
    assert cfg.output_dir == cfg_dir / "out" and cfg.cache_dir == tmp_path / "configs" / "cache"
    assert cfg.deepspeed == Path("/abs/zero2.json")  # absolute paths are kept
    assert cfg.data.train == [tmp_path / "configs" / "data" / "a", Path("/abs/b")]
    assert cfg.data.val == [tmp_path / "configs" / "data" / "v"]
    # on the command line (overrides, --output): relative to the working directory, existing or not
    cfg = load(["model=m2", "data.train=[d1, d2]", "tokenizer=t2"], output_dir="o2", cache_dir="c2")
    assert cfg.model == str(work / "m2") and cfg.tokenizer == str(work / "t2")
    assert cfg.data.train == [work / "d1", work / "d2"] and cfg.data.val == [
        tmp_path / "configs" / "data" / "v"
    ]
    assert cfg.output_dir == work / "o2" and cfg.cache_dir == work / "c2"
    # a named model config is a name, in the file or on the command line
    assert load(["model=seagull-tiny"]).model == "seagull-tiny"
    _write(path, {**raw, "model": "seagull-test"})
    assert load().model == "seagull-test"


def test_stage0_configs_follow_the_same_path_rule(tmp_path: Path, monkeypatch) -> None:
    from seagull.train.config_base import build_config, read_config
    from seagull.train.tower.config import TowerConfig

    path = _write(tmp_path / "c" / "tower.yaml", {"stage": "tower", "train": ["../d"], "output_dir": "o"})
    monkeypatch.chdir(tmp_path)
    cfg = build_config(TowerConfig, read_config(TowerConfig, path), path)
    assert (
        cfg.train == [tmp_path / "d"]
        and cfg.output_dir == tmp_path / "c" / "o"
        and cfg.model == "seagull-tiny"
    )
    cfg = build_config(TowerConfig, read_config(TowerConfig, path, ["val=[v]"], {"output_dir": "o"}), path)
    assert cfg.val == [tmp_path / "v"] and cfg.output_dir == tmp_path / "o"


def test_extends_merges_sections_key_by_key_and_replaces_other_options(
    tmp_path: Path, tiny_synth_dataset: Path
) -> None:
    from seagull.train.config import load_config

    base = _write(
        tmp_path / "base" / "base.yaml",
        {
            "model": "seagull-test",
            "model_overrides": {"mfe": {"lowlevel_rest": True}},
            "output_dir": "out",
            "max_steps": 5,
            "mixed_precision": "no",
            "data": {"train": [str(tiny_synth_dataset)], "task_mix": {"quality": 1.0, "judgment": 2.0}},
            "optim": {"lr": 0.5, "warmup_steps": 3},
        },
    )
    _write(tmp_path / "middle.yaml", {"extends": "base/base.yaml", "seed": 4, "data": {"convs_per_image": 2}})
    child = _write(
        tmp_path / "runs" / "child.yaml",
        {
            "extends": "../middle.yaml",
            "model_overrides": {},
            "data": {"task_mix": {"distortion": 1.0}},
            "optim": {"lr": 0.25},
        },
    )
    cfg = load_config(child)
    assert cfg.seed == 4 and cfg.max_steps == 5 and cfg.model_overrides == {}
    assert cfg.output_dir == tmp_path / "base" / "out"  # relative to the file that says it
    assert cfg.data.train == [tiny_synth_dataset] and cfg.data.convs_per_image == 2
    assert cfg.data.task_mix == {"distortion": 1.0}  # a mapping option is replaced, not merged
    assert (cfg.optim.lr, cfg.optim.warmup_steps) == (0.25, 3)  # a section is merged
    assert load_config(child, ["optim.warmup_steps=1"]).optim.warmup_steps == 1  # overrides come last
    assert load_config(base).seed == 0  # a base is not changed by what extends it


@pytest.mark.parametrize(
    ("extends", "message"),
    [
        ("missing.yaml", r"extends: missing.yaml does not exist \(looked for .*missing.yaml"),
        ("a.yaml", "extends itself through"),
        (3, "extends must be the path of another config file, got 3"),
        ("tower.yaml", "is a stage-0 config"),
    ],
)
def test_bad_extends_are_refused(tmp_path: Path, extends, message: str) -> None:
    from seagull.train.config import load_config

    _write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    _write(tmp_path / "tower.yaml", {"stage": "tower"})
    path = _write(tmp_path / "a.yaml", {"extends": extends})
    with pytest.raises(ConfigError, match=message):
        load_config(path, check_data=False)
    if extends == "a.yaml":
        path = _write(tmp_path / "a.yaml", {"extends": "b.yaml"})
        with pytest.raises(ConfigError, match=r"a.yaml -> .*b.yaml -> .*a.yaml"):
            load_config(path, check_data=False)


def test_each_section_checks_itself() -> None:
    from seagull.train.config import AuxConfig, DataConfig, LoraSettings, OptimConfig, PartsConfig
    from seagull.train.tower.config import TowerLossWeights

    cases = [
        (DataConfig(train=[Path("x")], train_repeat=[1, 2]), "data.train_repeat"),
        (LoraSettings(dropout=1.0), r"lora.dropout must be in \[0, 1\)"),
        (PartsConfig(lm="adapter"), "parts.lm must be one of"),
        (OptimConfig(scheduler="step"), "optim.scheduler must be cosine"),
        (AuxConfig(warmup_steps=5), "aux.warmup_steps needs aux.weight > 0"),
        (
            TowerLossWeights(quality=0, types=0, severity=0, rank=0),
            "loss weights must be >= 0 with a positive sum",
        ),
    ]
    for section, message in cases:
        with pytest.raises(ConfigError, match=message):
            section.validate()
    DataConfig(train=[Path("x")]).validate(check_data=False)
    for ok in (LoraSettings(), PartsConfig(), OptimConfig(), AuxConfig(), TowerLossWeights()):
        ok.validate()


def test_the_digest_ignores_where_a_run_writes_and_changes_with_what_it_learns() -> None:
    from seagull.train.config import TrainConfig
    from seagull.train.tower.config import TowerConfig

    a = TrainConfig()
    assert a.digest() == TrainConfig(output_dir=Path("elsewhere"), log_every=1).digest()
    b = TrainConfig()
    b.data.val_max_rois = 3
    assert b.digest() == a.digest()
    b.optim.lr = 1.0
    assert b.digest() != a.digest()
    assert TowerConfig().digest() == TowerConfig(val_photos=3, output_dir=Path("x")).digest()
    assert TowerConfig().digest() != TowerConfig(crop=64).digest()
