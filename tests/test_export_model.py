"""``seagull export-model``: a model stored in fp16 loads, stays tied and computes what the fp32 one did."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from seagull.cli import main
from seagull.errors import ConfigError, ModelError
from seagull.model import load_model
from seagull.train.export import export_model


@pytest.fixture(scope="module")
def saved(make_micro_model, micro_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "fp32"
    make_micro_model().save_pretrained(path, tokenizer=micro_tokenizer)
    return path


def test_fp16_export_loads_tied_and_close(saved, tmp_path):
    res = export_model(saved, tmp_path / "fp16", "float16")
    assert res.bytes_after < 0.6 * res.bytes_before
    with safe_open(str(tmp_path / "fp16" / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (not iterable)
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    a, b = load_model(saved), load_model(tmp_path / "fp16")
    sa, sb = a.state_dict(), b.state_dict()
    assert sb["language_model.lm_head.weight"].dtype == torch.float32  # loaded into the fp32 model
    for k in sa:
        if sa[k].is_floating_point():
            torch.testing.assert_close(sb[k], sa[k].half().float())
    assert torch.equal(sb["language_model.lm_head.weight"], sb["language_model.model.embed_tokens.weight"])
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        la, lb = a.language_model(input_ids=ids).logits, b.language_model(input_ids=ids).logits
    assert (la - lb).abs().max() < 1e-2
    record = json.loads((tmp_path / "fp16" / "export.json").read_text())
    assert record["dtype"] == "float16" and len(record["sha256"]) == 64
    assert (tmp_path / "fp16" / "tokenizer.json").is_file()


def test_overflow_and_bad_inputs_are_clear_errors(saved, tmp_path):
    with pytest.raises(ConfigError, match="not one of"):
        export_model(saved, tmp_path / "x", "int8")
    with pytest.raises(ModelError, match="no model.safetensors"):
        export_model(tmp_path, tmp_path / "x")
    big = tmp_path / "big"
    model = load_model(saved)
    with torch.no_grad():
        next(model.mask_extractor.parameters()).view(-1)[0] = 1e6
    model.save_pretrained(big)
    with pytest.raises(ConfigError, match="overflows float16"):
        export_model(big, tmp_path / "y")


def test_cli_refuses_an_existing_output(saved, tmp_path, capsys):
    out = tmp_path / "bf16"
    assert main(["export-model", "--model", str(saved), "--out", str(out), "--dtype", "bfloat16"]) == 0
    assert "as bfloat16" in capsys.readouterr().out
    assert main(["export-model", "--model", str(saved), "--out", str(out)]) == 2
