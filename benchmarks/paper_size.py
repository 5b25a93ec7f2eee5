"""SEAGULL-7B's path end to end on one device, random weights: build, released files, load, assess, train.

1. builds the ``seagull-7b`` configuration (OpenCLIP ConvNeXt-L at 512 px, the released MFE, LLaMA-7B,
   Vicuna-v1 prompts) on the meta device and materialises it on the device in bf16 with random weights;
   the tokenizer is of the released kind: a SentencePiece model of 32,000 pieces (trained here on the
   project's template text) with ``<global>`` = 32000 and ``<local>`` = 32001 added;
2. writes the released files (two ``pytorch_model-*.bin`` shards, their index, config.json, the tokenizer
   files, and the OpenCLIP ``open_clip_pytorch_model.bin``) and loads them back with ``load_released``
   (a strict load): every tensor must come back bit for bit;
3. assesses one photo with 1 and 10 ROIs x 3 questions through the Assessor (warm, median of
   ``--repeats``) and with the released pattern (``assess_speed.released_pattern``: one ROI and one
   question per call, the image encoded again every time), the same weights; every score must agree
   within TOLERANCE (bf16 arithmetic, batched and padded differently);
4. measures the distortion pass's severity step on 10 ROIs: the KV-cache bytes it adds per ROI for
   1..5 severity words, with the Assessor's shared block (every word on one read-only "With" state)
   and with the pass it replaced (the state repeated once per word; kept here only to measure it),
   and the largest score difference between the two (bf16 arithmetic: noise, not a difference of
   method; ``--dtype float32`` shows the method's own difference);
5. runs ``--steps`` stage-2 LoRA steps (``train/configs/stage2_finetune.yaml`` on one device, no
   DeepSpeed) at batch 1 and 4 with the project's Trainer on a small synthetic set made from examples/;
6. prints a table beside the targets for an H200-class GPU; ``--save`` writes
   benchmarks/results/paper_size.json. The exit status is 1 when the round trip or the outputs differ,
   or a LoRA run fails (out of memory counts only at batch 1).

``--layers``, ``--hidden``, ``--vision`` and ``--image-size`` (the MFE width follows it, (size/16)^2 as
released) shrink the same configuration for a CPU; ``--smoke`` is a tiny one that runs in well under a minute on a 2-core CPU.

    python benchmarks/paper_size.py [--device cuda] [--repeats 5] [--steps 4] [--batches 1 4]
                                    [--layers N] [--hidden H] [--vision convnext_atto] [--image-size 128]
                                    [--dtype bfloat16|float32] [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers.cache_utils import DynamicCache  # noqa: E402

from assess_speed import default_image, make_rois, max_diff, released_pattern  # noqa: E402
from common import EXAMPLES, REPO, add_common_options, save_result  # noqa: E402
from seagull import templates as T  # noqa: E402
from seagull.assess import Assessor  # noqa: E402
from seagull.assess.assessor import _Item  # noqa: E402
from seagull.labels import TASKS  # noqa: E402
from seagull.model import SeagullConfig, SeagullForCausalLM, get_config, load_released  # noqa: E402
from seagull.model.checkpoints import materialize_buffers, ours_to_released  # noqa: E402
from seagull.model.processor import WITH  # noqa: E402
from seagull.model.tokenizer import train_sentencepiece  # noqa: E402

TOLERANCE = 0.01  # largest allowed |difference| of any score (all in [0, 1]) between the paths, in bf16
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
DTYPE = torch.bfloat16  # --dtype
SEVERITY_ROIS = 10
LEARNED_PIECES = 800  # SentencePiece pieces learned from the template text; the rest of the 32,000 are unused
STAGE2 = REPO / "src" / "seagull" / "train" / "configs" / "stage2_finetune.yaml"
TARGETS = {  # for an H200-class GPU and the full configuration
    "ten_rois_s": 1.0,
    "speedup_per_roi_question": 5.0,
    "inference_peak_gb": 20.0,
}
SHARDS = ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")


# --------------------------------------------------------------------------- 1. model and tokenizer


def paper_config(args: argparse.Namespace) -> SeagullConfig:
    """``seagull-7b``, shrunk by the scaling options that were given (names and layout unchanged)."""
    cfg = get_config("seagull-7b")
    text, vision, mfe = dict(cfg.text_config), {}, {}
    if args.layers:
        text["num_hidden_layers"] = args.layers
    if args.hidden:
        heads = max(1, args.hidden // 128)  # LLaMA-7B's head width, 128
        text |= {
            "hidden_size": args.hidden,
            "intermediate_size": args.hidden * 11008 // 4096,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
        }
    if args.vision:
        vision["name"] = args.vision
    if args.image_size:
        vision["image_size"] = args.image_size
        d = (args.image_size // 16) ** 2  # the released local branch's channel tokens fix the MFE width
        mfe = {"dim": d, "mlp_dim": 2 * d, "local_hidden": d // 2, "heads": max(1, d // 128)}
    return get_config(cfg, text_config=text, vision=vision, mfe=mfe)


def build_on_device(cfg: SeagullConfig, device: torch.device) -> SeagullForCausalLM:
    """Random weights made on ``device`` in bf16: built on meta, ``to_empty``, every module initialised."""
    with torch.device("meta"):
        model = SeagullForCausalLM(cfg).to(DTYPE)
    model.to_empty(device=device)
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            own = list(module.parameters(recurse=False))
            if own and hasattr(module, "reset_parameters"):
                module.reset_parameters()
            else:
                for p in own:  # RMSNorm weights and ConvNeXt layer scales
                    p.fill_(1.0)
    # to_empty left the buffers uninitialised too: back to meta, then rebuilt as the loader rebuilds them.
    for module in model.modules():
        for name, buf in module._buffers.items():
            if buf is not None:
                module._buffers[name] = buf.to("meta")
    materialize_buffers(model, device)
    return model.eval()


def write_tokenizer(folder: Path) -> None:
    """A LLaMA-kind tokenizer: 32,000 SentencePiece pieces, then ``<global>`` (32000) and ``<local>`` (32001)."""
    unused = [f"<unused{i}>" for i in range(32000 - LEARNED_PIECES)]
    (folder / "tokenizer.model").write_bytes(train_sentencepiece(32000, unused))
    added = [T.GLOBAL_TOKEN, T.LOCAL_TOKEN]
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "pad_token": "<unk>"}
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "additional_special_tokens": added}))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    (folder / "added_tokens.json").write_text(json.dumps({t: 32000 + i for i, t in enumerate(added)}))


# --------------------------------------------------------------------------- 2. released files


def write_released(model: SeagullForCausalLM, folder: Path, openclip_file: Path) -> int:
    """The release's files (names from docs/seagull7b.md) in ``folder`` and the OpenCLIP tower file;
    returns the bytes written."""
    sd = model.state_dict()
    released = {ours_to_released(k): v for k, v in sd.items() if not k.startswith("vision_tower.")}
    names = sorted(released)
    shards = dict(zip(SHARDS, (names[: len(names) // 2], names[len(names) // 2 :]), strict=True))
    for fname, keys in shards.items():
        torch.save({k: released[k].cpu() for k in keys}, folder / fname)
    index = {"weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    release_fields = {
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_start_end": False,
        "image_aspect_ratio": "pad",
    }
    text = {**model.config.text_config, "architectures": ["LlavaLlamaForCausalLM"], **release_fields}
    (folder / "config.json").write_text(json.dumps(text, indent=2))
    trunk = "vision_tower.trunk."
    clip = {
        "visual." + k[len("vision_tower.") :]: v.cpu()
        for k, v in sd.items()
        if k.startswith(trunk) and not k.startswith(trunk + "head.")
    }
    torch.save({**clip, "visual.head.proj.weight": torch.zeros(2, 2)}, openclip_file)
    write_tokenizer(folder)
    return sum(f.stat().st_size for f in [*folder.iterdir(), openclip_file])


def round_trip(built: SeagullForCausalLM, loaded: SeagullForCausalLM) -> dict[str, Any]:
    a, b = built.state_dict(), loaded.state_dict()
    differ = sorted(k for k in a.keys() & b.keys() if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k]))
    missing = sorted(a.keys() ^ b.keys())
    return {"tensors": len(a), "differ": differ[:5], "missing": missing[:5], "equal": not (differ or missing)}


# --------------------------------------------------------------------------- 3. inference


def progress(what: str, t0: float) -> float:
    """One line on stderr per finished phase (a run cut short by a timeout still shows how far it got)."""
    seconds = time.perf_counter() - t0
    print(f"[paper_size] {what}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(f: Any, repeats: int, device: torch.device) -> tuple[float, Any]:
    """Median seconds of ``repeats`` warm calls (one warm-up call first) and the last result."""
    out = f()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = f()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


class Peak:
    """Peak device memory (GB) of a phase: allocated by torch on CUDA; None elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __enter__(self) -> Peak:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.gb = None
        return self

    def __exit__(self, *_: Any) -> None:
        if self.cuda:
            self.gb = torch.cuda.max_memory_allocated() / 1e9


def assess_runs(a: Assessor, img: np.ndarray, repeats: int, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    for n in (1, 10):
        rois = make_rois(img.shape[0], img.shape[1], n)
        t_ours, ours = median_time(lambda rois=rois: a.assess(img, rois), repeats, device)
        t_rel, rel = median_time(lambda rois=rois: released_pattern(a, img, rois), repeats, device)
        rows.append(
            {
                "rois": n,
                "roi_questions": n * len(TASKS),
                "batched_s": t_ours,
                "released_pattern_s": t_rel,
                "speedup_per_roi_question": t_rel / t_ours,
                "max_abs_diff": max_diff(ours, rel),
                # how far apart the ROIs' quality scores are, to read the difference above against
                "quality_spread": max(x.quality for x in ours) - min(x.quality for x in ours),
            }
        )
    return rows


# --------------------------------------------------------------------------- 4. the severity step


def repeated_state_severity(
    a: Assessor, state: DynamicCache, mask: torch.Tensor, last_pos: torch.Tensor
) -> tuple[dict[str, torch.Tensor], DynamicCache]:
    """The severity step as the Assessor ran it before the shared block, kept here only to measure
    against it: the "With" state repeated once per severity word along the batch, each word one more
    row (signature of ``Assessor._after_severity``; also returns the cache it built)."""
    words, n = list(a.severity_tokens), mask.shape[0]
    length, k = len(a.severity_tokens[words[0]]), len(words)
    repeated = DynamicCache(
        ddp_cache_data=[(lay.keys.repeat(k, 1, 1, 1), lay.values.repeat(k, 1, 1, 1)) for lay in state.layers]
    )
    toks = torch.tensor([a.severity_tokens[w] for w in words], device=mask.device)  # [k, length]
    embeds = a.model.get_input_embeddings()(toks).repeat_interleave(n, dim=0)  # row w * n + j
    full = torch.cat([mask, mask.new_ones((n, length))], 1).repeat(k, 1)
    pos = (last_pos[:, None] + 1 + torch.arange(length, device=mask.device)).repeat(k, 1)
    logits, cache = a.model.run_lm(embeds, full, pos, repeated, logits_to_keep=1)
    return {w: logits[i * n : (i + 1) * n, -1:] for i, w in enumerate(words)}, cache


def cache_bytes(*caches: DynamicCache) -> int:
    """Bytes of the distinct tensors the caches hold (views of one tensor count once)."""
    storages = {}
    for cache in caches:
        for lay in cache.layers:
            for t in (lay.keys, lay.values):
                storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(storages.values())


def prediction_diff(x: list[Any], y: list[Any]) -> float:
    """Largest |difference| of any score of two lists of RegionPrediction (severity probabilities too)."""
    d = 0.0
    for p, q in zip(x, y, strict=True):
        d = max(d, abs(p.quality - q.quality), abs(p.importance - q.importance))
        for u, v in zip(p.distortions, q.distortions, strict=True):
            d = max(d, abs(u.confidence - v.confidence), abs(u.severity - v.severity))
            d = max(d, *(abs(u.severity_probs[s] - v.severity_probs[s]) for s in u.severity_probs))
    return d


@torch.inference_mode()
def severity_step(a: Assessor, img: np.ndarray, device: torch.device) -> dict[str, Any]:
    """KV-cache bytes the severity step adds per ROI (after it returns, and the peak on CUDA) for 1..5
    severity words, repeated state vs shared block, on the "With" state of SEVERITY_ROIS ROIs; and
    the largest score difference of the two steps over a whole assessment of those ROIs."""
    rois = make_rois(img.shape[0], img.shape[1], SEVERITY_ROIS)
    n = len(rois)
    enc, cache = a._encode([img])
    regions = a.model.encode_regions(enc, a.processor.masks([np.stack([r.mask for r in rois])]))
    inputs, sub = a._chunk_inputs([_Item(j, 0, WITH) for j in range(n)], regions, cache, 1)
    mask, last = inputs["attention_mask"], inputs["position_ids"][:, -1]
    _, with_state = a.model.run_lm(
        inputs["inputs_embeds"], mask, inputs["position_ids"], sub, logits_to_keep=2
    )
    context = with_state.get_seq_length()
    token_bytes = cache_bytes(with_state) / (n * context)
    words = dict(a.severity_tokens)
    steps = {
        "repeated_state": lambda st: repeated_state_severity(a, st, mask, last)[1],
        "shared_block": lambda st: (a._after_severity(st, mask, last), st)[1],
    }
    rows = []
    try:
        for k in range(1, len(words) + 1):
            a.severity_tokens = dict(list(words.items())[:k])
            row: dict[str, Any] = {"words": k, "word_tokens": sum(len(t) for t in a.severity_tokens.values())}
            for name, step in steps.items():
                state = DynamicCache(
                    ddp_cache_data=[(lay.keys.clone(), lay.values.clone()) for lay in with_state.layers]
                )
                base = cache_bytes(state)
                sync(device)
                start = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                grown = step(state)
                sync(device)
                row[f"{name}_bytes_per_roi"] = (cache_bytes(state, grown) - base) / n
                row[f"{name}_peak_bytes_per_roi"] = (
                    (torch.cuda.max_memory_allocated(device) - start) / n if device.type == "cuda" else None
                )
                del state, grown
            rows.append(row)
    finally:
        a.severity_tokens = words
    shared = a.assess(img, rois)
    a._after_severity = lambda st, m, p: repeated_state_severity(a, st, m, p)[0]  # type: ignore[method-assign]
    try:
        repeated = a.assess(img, rois)
    finally:
        del a._after_severity
    return {
        "rois": n,
        "prompt_tokens": context,  # cached per ROI before the step: shared prefix + "With" suffix
        "kv_bytes_per_token": token_bytes,
        "rows": rows,
        "max_abs_diff": prediction_diff(shared, repeated),
    }


# --------------------------------------------------------------------------- 5. training


def training_data(folder: Path, max_side: int) -> Path:
    """Six labelled images (two example photos: clean, blurred, noisy) with stored conversations."""
    from seagull.synth import SynthConfig, run_synthesis

    cfg = SynthConfig(
        refs=EXAMPLES,
        out=folder,
        settings=1,
        families=("blur", "noise"),
        max_rois=3,
        max_side=max_side,
        split_fractions=(1.0, 0.0, 0.0),
    )
    run_synthesis(cfg, progress=False)
    return folder


def lora_steps(
    model: SeagullForCausalLM, tok: Any, data: Path, out: Path, batch: int, steps: int, device: torch.device
) -> dict[str, Any]:
    """``steps`` optimizer steps of stage 2 at ``batch`` images; the adapters are removed afterwards."""
    from seagull.train.config import load_config
    from seagull.train.trainer import Trainer

    cfg = load_config(
        STAGE2,
        [f"data.train=[{data}]", "deepspeed=null"],
        model="seagull-7b",
        output_dir=str(out),
        max_steps=steps,
        batch_images=batch,
        tensorboard=False,
        progress=False,
        val_at_start=False,
    )
    row: dict[str, Any] = {
        "batch_images": batch,
        "convs_per_image": cfg.data.convs_per_image,
        "lora_r": cfg.lora.r,
    }
    try:
        with Peak(device) as peak:
            trainer = Trainer(cfg, model=model, tokenizer=tok)
            trainer.setup()
            times, losses = [], []
            for step in range(steps):
                sync(device)
                t0 = time.perf_counter()
                losses.append(trainer.train_step(step)[0])
                sync(device)
                times.append(time.perf_counter() - t0)
        row |= {
            "s_per_step": statistics.median(times[1:] or times),
            "first_step_s": times[0],
            "losses": losses,
        }
        row["peak_gb"] = peak.gb
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
    except Exception as e:  # noqa: BLE001 - keep the inference numbers of a one-off GPU run; reported, exit 1
        row["error"] = f"{type(e).__name__}: {e}"
    finally:
        if hasattr(model.language_model, "unload"):  # peft: back to the bare LM for the next run
            model.language_model = model.language_model.unload()
        model.eval()
    return row


# --------------------------------------------------------------------------- report


def print_table(r: dict[str, Any]) -> None:
    gb = lambda v: "n/a (CPU)" if v is None else f"{v:.1f} GB"  # noqa: E731
    print(f"{r['configuration']}: {r['parameters'] / 1e9:.3f} B parameters, {r['device']}, {r['dtype']}")
    print(
        f"build on device {r['build_s']:.1f} s; released files {r['released_bytes'] / 1e9:.2f} GB written in "
        f"{r['write_s']:.1f} s, load_released {r['load_s']:.1f} s"
    )
    rt = r["round_trip"]
    print(
        f"released layout round trip (strict load): {rt['tensors']} tensors, "
        f"{'all equal' if rt['equal'] else 'DIFFERENT ' + str(rt['differ'] + rt['missing'])}"
    )
    print(
        f"{'ROIs x questions':<18}{'batched s':>11}{'released s':>12}{'speedup':>9}{'max |diff|':>12}"
        f"{'ROI spread':>12}"
    )
    for row in r["assess"]:
        print(
            f"{row['rois']:>4} x {len(TASKS):<11}{row['batched_s']:>11.3f}{row['released_pattern_s']:>12.3f}"
            f"{row['speedup_per_roi_question']:>8.1f}x{row['max_abs_diff']:>12.2e}{row['quality_spread']:>12.2e}"
        )
    print(f"outputs {'equal' if r['outputs_equal'] else 'DIFFERENT'} within the bf16 tolerance {TOLERANCE:g}")
    print(f"inference peak memory {gb(r['inference_peak_gb'])}")
    sv = r["severity_step"]
    kb = lambda v: "n/a (CPU)" if v is None else f"{v / 1e3:.1f} KB"  # noqa: E731
    print(
        f"severity step, KV cache added per ROI ({sv['rois']} ROIs on a {sv['prompt_tokens']}-token cached prompt, "
        f"{sv['kv_bytes_per_token'] / 1e3:.2f} KB per token):"
    )
    print(f"{'words':>6}{'repeated state':>16}{'shared block':>14}{'peak repeated':>15}{'peak shared':>13}")
    for row in sv["rows"]:
        print(
            f"{row['words']:>6}{kb(row['repeated_state_bytes_per_roi']):>16}{kb(row['shared_block_bytes_per_roi']):>14}"
            f"{kb(row['repeated_state_peak_bytes_per_roi']):>15}{kb(row['shared_block_peak_bytes_per_roi']):>13}"
        )
    print(
        f"shared block vs repeated state: max |diff| of scores {sv['max_abs_diff']:.2e} "
        f"({'within' if sv['max_abs_diff'] <= TOLERANCE else 'OVER'} the tolerance {TOLERANCE:g})"
    )
    for row in r["train"]:
        if "error" in row:
            print(f"LoRA step, batch {row['batch_images']}: {row['error']}")
        else:
            print(
                f"LoRA step, batch {row['batch_images']}: {row['s_per_step']:.2f} s/step "
                f"(first {row['first_step_s']:.2f} s), peak {gb(row['peak_gb'])}"
            )
    ten = r["assess"][-1]
    t = TARGETS
    print(
        f"targets (H200-class GPU, full configuration): 10 ROIs x 3 <= {t['ten_rois_s']:g} s "
        f"(here {ten['batched_s']:.2f} s); speedup >= {t['speedup_per_roi_question']:g}x "
        f"(here {ten['speedup_per_roi_question']:.1f}x); inference peak <= {t['inference_peak_gb']:g} GB "
        f"(here {gb(r['inference_peak_gb'])}); LoRA step at batch 1 fits"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5, help="timed warm calls per path (median)")
    ap.add_argument("--steps", type=int, default=4, help="LoRA steps per batch size (the first is warm-up)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="images per LoRA step")
    ap.add_argument("--layers", type=int, help="scale down: LM layers (released 32)")
    ap.add_argument("--hidden", type=int, help="scale down: LM width (released 4096; heads of 128)")
    ap.add_argument("--vision", help="scale down: timm ConvNeXt trunk (released convnext_large)")
    ap.add_argument(
        "--image-size", type=int, help="scale down: tower input size (released 512; MFE width (size/16)^2)"
    )
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16", help="weights and arithmetic")
    ap.add_argument("--max-side", type=int, default=512, help="training photos' longer side")
    ap.add_argument("--workdir", help="where the released files are written (default: the temp folder)")
    add_common_options(ap, "paper_size")
    args = ap.parse_args()
    global DTYPE
    DTYPE = DTYPES[args.dtype]
    if args.smoke:
        args.layers, args.hidden, args.vision, args.image_size = 2, 64, "convnext_atto", 128
        args.repeats, args.steps, args.max_side = 1, 2, 128
    img = default_image()  # 512x512
    if args.smoke:  # a quarter-size copy, as assess_speed's smoke run: the same code paths, faster
        img = np.ascontiguousarray(img[::4, ::4])
    device = torch.device(args.device)
    cfg = paper_config(args)
    scaled = {k: getattr(args, k) for k in ("layers", "hidden", "vision", "image_size")}
    scaled = {k: v for k, v in scaled.items() if v}
    name = "seagull-7b" + (
        " scaled down (" + ", ".join(f"{k}={v}" for k, v in scaled.items()) + ")" if scaled else ""
    )
    r: dict[str, Any] = {"configuration": name, "scaled": scaled, "device": str(device), "dtype": args.dtype}
    with tempfile.TemporaryDirectory(prefix="paper_size-", dir=args.workdir) as tmp:
        tmp_path = Path(tmp)
        folder, clip = tmp_path / "SEAGULL-7B", tmp_path / "open_clip_pytorch_model.bin"
        folder.mkdir()
        t0 = time.perf_counter()
        built = build_on_device(cfg, device)
        sync(device)
        r["build_s"] = progress("built on the device", t0)
        r["parameters"] = sum(p.numel() for p in built.parameters())
        t0 = time.perf_counter()
        r["released_bytes"] = write_released(built, folder, clip)
        r["write_s"] = progress("released files written", t0)
        t0 = time.perf_counter()
        model, tok = load_released(folder, clip, dtype=DTYPE, device=device, base_config=cfg)
        sync(device)
        r["load_s"] = progress("load_released", t0)
        r["round_trip"] = round_trip(built, model)
        del built
        t0 = time.perf_counter()
        with Peak(device) as peak:
            a = Assessor(model, device=device, tokenizer=tok)
            r["assess"] = assess_runs(a, img, args.repeats, device)
        progress("assessed", t0)
        r["inference_peak_gb"] = peak.gb
        r["outputs_equal"] = all(row["max_abs_diff"] <= TOLERANCE for row in r["assess"])
        t0 = time.perf_counter()
        r["severity_step"] = severity_step(a, img, device)
        progress("severity step measured", t0)
        data = training_data(tmp_path / "data", args.max_side)
        t0 = time.perf_counter()
        r["train"] = [
            lora_steps(model, tok, data, tmp_path / f"run-{b}", b, args.steps, device) for b in args.batches
        ]
        progress("LoRA steps", t0)
    r |= {
        "photo": "skimage.data.astronaut, " + "x".join(map(str, img.shape[1::-1])),
        "repeats": args.repeats,
        "timing": "median of `repeats` warm calls after one warm-up call",
        "tolerance": TOLERANCE,
        "targets": TARGETS,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "torch": torch.__version__,
    }
    print_table(r)
    save_result(args, r)
    # Batch 1 must fit; a larger batch may run out of memory (reported), any other error fails the run.
    trained = all(
        "error" not in row or (row["error"] == "out of memory" and row["batch_images"] > 1)
        for row in r["train"]
    )
    equal = r["outputs_equal"] and r["severity_step"]["max_abs_diff"] <= TOLERANCE
    return 0 if r["round_trip"]["equal"] and equal and trained else 1


if __name__ == "__main__":
    sys.exit(main())
