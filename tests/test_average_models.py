"""``seagull average-models``: the weighted average of fine-tunes of one model loads and is the average."""

from __future__ import annotations

import json

import pytest
import torch

from seagull.cli import main
from seagull.errors import ConfigError
from seagull.model import load_model
from seagull.train.average import average_models


@pytest.fixture(scope="module")
def two_finetunes(make_micro_model, micro_tokenizer, tmp_path_factory):
    """The micro model and a copy whose MFE weights moved, as two fine-tunes of one model."""
    root = tmp_path_factory.mktemp("finetunes")
    a, b = make_micro_model(), make_micro_model()
    with torch.no_grad():
        for p in b.mask_extractor.parameters():
            p.add_(0.1)
    a.save_pretrained(root / "a", tokenizer=micro_tokenizer)
    b.save_pretrained(root / "b", tokenizer=micro_tokenizer)
    return root / "a", root / "b"


def test_the_average_loads_and_is_the_weighted_mean(two_finetunes, tmp_path):
    a, b = two_finetunes
    res = average_models([a, b], tmp_path / "soup", weights=[3, 1])
    ma, mb, soup = load_model(a), load_model(b), load_model(tmp_path / "soup")
    sa, sb, ss = ma.state_dict(), mb.state_dict(), soup.state_dict()
    moved = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert moved and all(k.startswith("mask_extractor.") for k in moved)
    assert res.differing == len(moved)
    for k in sa:
        if sa[k].is_floating_point():
            torch.testing.assert_close(ss[k], 0.75 * sa[k] + 0.25 * sb[k])
    # tied tensors stay tied (the LM head is the embedding)
    assert torch.equal(ss["language_model.lm_head.weight"], ss["language_model.model.embed_tokens.weight"])
    record = json.loads((tmp_path / "soup" / "average.json").read_text())
    assert [i["weight"] for i in record["inputs"]] == [0.75, 0.25]
    assert all(len(i["sha256"]) == 64 for i in record["inputs"])


def test_refuses_what_is_not_one_model(two_finetunes, tmp_path):
    a, b = two_finetunes
    with pytest.raises(ConfigError, match="at least two"):
        average_models([a], tmp_path / "x")
    with pytest.raises(ConfigError, match="one positive weight"):
        average_models([a, b], tmp_path / "x", weights=[1, 0])
    other = tmp_path / "other"
    other.mkdir()
    for f in a.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((other / "config.json").read_text())
    cfg["mfe"]["dim"] = cfg["mfe"]["dim"] * 2
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="config.json differ"):
        average_models([a, other], tmp_path / "x")
    with pytest.raises(ConfigError, match="has no model.safetensors"):
        average_models([a, tmp_path], tmp_path / "x")
    assert not (tmp_path / "x" / "model.safetensors").exists()


def test_cli_writes_the_model_and_refuses_to_overwrite(two_finetunes, tmp_path, capsys):
    a, b = two_finetunes
    out = tmp_path / "soup"
    assert main(["average-models", "--model", str(a), str(b), "--out", str(out)]) == 0
    assert "averaged" in capsys.readouterr().out and (out / "model.safetensors").is_file()
    assert main(["average-models", "--model", str(a), str(b), "--out", str(out)]) == 2
    assert "already holds a model" in capsys.readouterr().err
