"""The training loop on ``accelerate``: parts to train, LoRA through peft, checkpoints, resume, final folder.

A step is one optimizer update: ``grad_accum`` micro-batches of ``batch_images`` images per process.
Micro-batch ``m`` of the run always holds the same images and conversations (drawn from
``(seed, epoch, index)``) and the RNG is re-seeded from ``(seed, m)`` before it, so a run killed
after a checkpoint and resumed gives the same final weights as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..model import build_model, load_model
from ..model.seagull import SeagullForCausalLM
from .config import TrainConfig, config_hash
from .data import ConversationDataset, ImageRef, collate, load_images, step_indices
from .features import FeatureStore, supports_split
from .region_heads import RegionHeads
from .step import TrainStep, answer_word_weights
from .tracking import MetricsLog
from .validate import ValResult, validate

CHECKPOINTS = "checkpoints"
FINAL = "final"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainResult:
    output_dir: Path
    final_dir: Path
    steps: int
    seconds: float
    steps_per_s: float
    first_val: dict[str, float] | None = None
    last_val: dict[str, float] | None = None
    losses: list[float] = field(default_factory=list)
    is_main: bool = True


# --------------------------------------------------------------------------- setup


def resolve_precision(requested: str) -> str:
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def load_tokenizer_for(cfg: TrainConfig) -> Any:
    from ..model.tokenizer import load_tokenizer, train_tokenizer

    if cfg.tokenizer:
        return load_tokenizer(cfg.tokenizer)
    model_dir = Path(cfg.model)
    if model_dir.is_dir() and (model_dir / "tokenizer.json").is_file():
        return load_tokenizer(model_dir)
    return train_tokenizer(vocab_size=cfg.tokenizer_vocab)


def build_for_training(cfg: TrainConfig, tokenizer: Any) -> SeagullForCausalLM:
    """Stage 1: a new model from a named config; stage 2: a trained model folder."""
    p = Path(cfg.model)
    if p.is_dir() and (p / "model.safetensors").is_file():
        if cfg.model_overrides:
            raise ConfigError("model_overrides cannot change a trained model folder; drop them for stage 2")
        model = load_model(p)
        if model.config.text_config["vocab_size"] != len(tokenizer):
            raise ConfigError(
                f"tokenizer has {len(tokenizer)} tokens but {p} was trained with "
                f"{model.config.text_config['vocab_size']}; use the tokenizer saved in {p}"
            )
        return model.train()
    return build_model(cfg.model, tokenizer=tokenizer, **dict(cfg.model_overrides)).train()


def lm_linear_names(lm: torch.nn.Module) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, m in lm.named_modules() if isinstance(m, torch.nn.Linear)}


def check_against_model(cfg: TrainConfig, model: SeagullForCausalLM) -> None:
    """Combinations that need the built model; raises ConfigError before any step."""
    lm = model.language_model
    if cfg.parts.lm == "lora":
        have = lm_linear_names(lm)
        if not have:
            raise ConfigError(
                "parts.lm: lora but the language model has no linear layers; use parts.lm: full"
            )
        missing = [t for t in cfg.lora.targets if t not in have]
        if missing:
            raise ConfigError(
                f"lora.targets {missing} match no linear layer of the language model; its linear layers are "
                f"{sorted(have)}"
            )
    if cfg.parts.lm == "full":
        n = sum(p.numel() for p in lm.parameters())
        if n > cfg.parts.full_finetune_max_params:
            raise ConfigError(
                f"parts.lm: full on a {n / 1e6:.0f} M-parameter LM exceeds parts.full_finetune_max_params "
                f"({cfg.parts.full_finetune_max_params / 1e6:.0f} M); use parts.lm: lora for large LMs"
            )
    if cfg.feature_cache != "none" and not supports_split(model):
        raise ConfigError(
            "feature_cache needs mfe.mode 'adaptive' with mfe.local_mode 'native' and a frozen tower "
            f"(this model has {model.config.mfe['mode']!r}/{model.config.mfe['local_mode']!r}); "
            "set feature_cache: none"
        )


def set_trainable(cfg: TrainConfig, model: SeagullForCausalLM) -> SeagullForCausalLM:
    model.requires_grad_(False)
    model.mask_extractor.requires_grad_(cfg.parts.mfe)
    model.mm_projector.requires_grad_(cfg.parts.projector)
    if model.token_norm is not None:  # the norms belong with the parts that make the tokens
        model.token_norm.requires_grad_(cfg.parts.mfe or cfg.parts.projector)
    if cfg.parts.lm == "full":
        model.language_model.requires_grad_(True)
    elif cfg.parts.lm == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=list(cfg.lora.targets),
            bias="none",
        )
        model.language_model = get_peft_model(model.language_model, lcfg)
    if cfg.gradient_checkpointing:
        model.language_model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    return model


def make_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warm = cfg.optim.warmup_steps
    kind = cfg.optim.scheduler

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        frac = (step - warm) / max(1, total - warm)
        return max(0.0, 1 - frac) if kind == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def total_steps(cfg: TrainConfig, n_images: int, world: int) -> int:
    if cfg.max_steps:
        return int(cfg.max_steps)
    per_step = cfg.batch_images * world * cfg.grad_accum
    return max(1, math.ceil(cfg.epochs * n_images / per_step))


# --------------------------------------------------------------------------- checkpoints


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints (with their state file), oldest first."""
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(accelerator: Any, out: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """accelerate state (model, optimizer, scheduler, RNG) + our state file, written last as the commit mark."""
    final = out / CHECKPOINTS / f"step-{step}"
    tmp = out / CHECKPOINTS / f".tmp-step-{step}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in checkpoint_dirs(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


# --------------------------------------------------------------------------- the loop


def _val_images(cfg: TrainConfig) -> list[ImageRef]:
    folders = cfg.data.val or cfg.data.train
    try:
        return load_images(folders, cfg.data.val_split)
    except Exception as e:  # a missing split is a config error, raised before training
        raise ConfigError(f"validation data {folders} split {cfg.data.val_split!r}: {e}") from e


def save_final(model: SeagullForCausalLM, tokenizer: Any, cfg: TrainConfig, out: Path) -> Path:
    """``final/``: config.json + model.safetensors + tokenizer, loadable by ``from_pretrained``."""
    final = out / FINAL
    final.mkdir(parents=True, exist_ok=True)
    from peft import PeftModel

    if isinstance(model.language_model, PeftModel):
        if cfg.lora.merge:
            model.language_model = model.language_model.merge_and_unload()
        else:
            model.language_model.save_pretrained(str(final / "lora_adapter"))
            model.language_model = model.language_model.unload()  # base weights without the adapters
    model.save_pretrained(final)
    tokenizer.save_pretrained(str(final))
    cfg.dump(final / "train_config.yaml")
    return final


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Run (or resume) the configured training; returns where the final model is and what happened."""
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin, DistributedDataParallelKwargs

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    plugin = None
    if cfg.deepspeed:
        plugin = DeepSpeedPlugin(hf_ds_config=str(cfg.deepspeed), gradient_accumulation_steps=cfg.grad_accum)
        # No DataLoader goes through accelerate, so fill the "auto" sizes it would have taken from one.
        ds = plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = cfg.batch_images
        ds["gradient_clipping"] = cfg.optim.max_grad_norm
        ds.pop("train_batch_size", None)
    accelerator = Accelerator(
        mixed_precision=resolve_precision(cfg.mixed_precision),
        gradient_accumulation_steps=cfg.grad_accum,
        cpu=not torch.cuda.is_available(),
        deepspeed_plugin=plugin,
        step_scheduler_with_optimizer=False,
        # Some MFE weights are unused by design (e.g. self-attention queries of independent ROIs).
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    world, rank = accelerator.num_processes, accelerator.process_index

    # Everything that can be wrong with the inputs is checked here, before any compute.
    ckpts = checkpoint_dirs(out) if resume else []
    if resume and not ckpts:
        raise ConfigError(
            f"--resume: {out / CHECKPOINTS} holds no complete checkpoint; start without --resume"
        )
    if not resume and checkpoint_dirs(out):
        raise ConfigError(
            f"{out} already holds checkpoints; pass --resume to continue or choose another --output"
        )
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer_for(cfg)
    model = build_for_training(cfg, tokenizer)
    check_against_model(cfg, model)
    images = load_images(cfg.data.train, cfg.data.train_split, cfg.data.image_limit)
    if len(images) < 1:
        raise ConfigError(f"no labelled training records in {cfg.data.train} split {cfg.data.train_split!r}")
    val_images = _val_images(cfg)
    model = set_trainable(cfg, model)
    image_token_id = int(model.config.image_token_id)
    dataset = ConversationDataset(
        images,
        tokenizer,
        image_token_id,
        mode=cfg.data.conversations,
        task_mix=dict(cfg.data.task_mix),
        convs_per_image=cfg.data.convs_per_image,
        turns_per_conversation=cfg.data.turns_per_conversation,
        max_length=cfg.data.max_length,
        seed=cfg.seed,
    )
    store = None
    if cfg.feature_cache != "none":
        store = FeatureStore(model, cfg.feature_cache, cfg.cache_dir)
    heads = RegionHeads(model.config.hidden_size) if cfg.aux.weight > 0 else None
    weights = None
    if cfg.aux.answer_word_weight != 1.0:
        weights = answer_word_weights(tokenizer, len(tokenizer), cfg.aux.answer_word_weight)
    step_module = TrainStep(
        model.to(accelerator.device), store, heads, cfg.aux.weight, cfg.aux.image_dropout, weights
    ).to(accelerator.device)
    params = [p for p in step_module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, betas=cfg.optim.betas
    )
    total = total_steps(cfg, len(images), world)
    scheduler = make_scheduler(cfg, optimizer, total)
    step_module, optimizer = accelerator.prepare(step_module, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    fingerprint = config_hash(cfg)

    start = 0
    if ckpts:
        last = ckpts[-1]
        state = json.loads((last / STATE_FILE).read_text())
        if state["config_hash"] != fingerprint or state["world_size"] != world:
            raise ConfigError(
                f"{last} was written by a different configuration or process count "
                f"(hash {state['config_hash']} vs {fingerprint}, world {state['world_size']} vs {world}); "
                "resume with the same config and launch command"
            )
        accelerator.load_state(str(last))
        start = int(state["step"])

    log = MetricsLog(out, cfg.tensorboard, start) if accelerator.is_main_process else None
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        cfg.dump(out / "train_config.yaml")
    inner: SeagullForCausalLM = accelerator.unwrap_model(step_module).model

    def run_val(step: int) -> ValResult:
        res = validate(inner, tokenizer, val_images, store, cfg.data.val_max_rois)
        if log is not None:
            log.log(step, "val", **res.to_dict())
        return res

    result = TrainResult(out, out / FINAL, total, 0.0, 0.0, is_main=accelerator.is_main_process)
    if val_images and cfg.val_at_start and start == 0:
        result.first_val = run_val(0).to_dict()
    bar = None
    if cfg.progress and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    per_micro = cfg.batch_images * world
    step_module.train()
    running, n_run, parts = 0.0, 0, {}
    for step in range(start, total):
        for a in range(cfg.grad_accum):
            micro = step * cfg.grad_accum + a
            epoch, idx = step_indices(len(images), cfg.seed, micro, per_micro)
            mine = idx[rank * cfg.batch_images : (rank + 1) * cfg.batch_images]
            torch.manual_seed(cfg.seed * 1_000_003 + micro)  # dropout etc. depend only on the micro-batch
            batch = collate([dataset.item(i, epoch) for i in mine], int(tokenizer.pad_token_id))
            with accelerator.accumulate(step_module):
                loss = step_module(batch, lm=step >= cfg.aux.warmup_steps)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.optim.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, cfg.optim.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running += float(loss.detach())
            for k, v in accelerator.unwrap_model(step_module).last_parts.items():
                parts[k] = parts.get(k, 0.0) + v
            n_run += 1
        scheduler.step()
        result.losses.append(running / max(1, n_run))
        done = step + 1
        if log is not None and (done % cfg.log_every == 0 or done == total):
            elapsed = time.perf_counter() - t0
            log.log(
                done,
                "train",
                epoch=epoch,
                loss=running / n_run,
                lr=scheduler.get_last_lr()[0],
                images_per_s=(done - start) * per_micro * cfg.grad_accum / max(elapsed, 1e-9),
                elapsed_s=elapsed,
                **{k: v / n_run for k, v in parts.items()},
            )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{running / n_run:.3f}")
        running, n_run, parts = 0.0, 0, {}
        if done % cfg.save_every == 0 or done == total:
            state = {
                "step": done,
                "epoch": epoch,
                "micro_batches": done * cfg.grad_accum,
                "data_order": {"seed": cfg.seed, "images": len(images), "images_per_micro_batch": per_micro},
                "config_hash": fingerprint,
                "world_size": world,
            }
            save_checkpoint(accelerator, out, done, state, cfg.keep_checkpoints)
        if val_images and (done % cfg.val_every == 0 or done == total):
            result.last_val = run_val(done).to_dict()
            if bar is not None:
                bar.set_postfix(
                    loss=f"{result.losses[-1]:.3f}", q_srcc=f"{result.last_val['quality_srcc']:.3f}"
                )
    if bar is not None:
        bar.close()
    result.seconds = time.perf_counter() - t0
    result.steps_per_s = (total - start) / max(result.seconds, 1e-9)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_final(inner, tokenizer, cfg, out)
        summary = {
            "steps": total,
            "resumed_from": start,
            "seconds": result.seconds,
            "steps_per_s": result.steps_per_s,
            "world_size": world,
            "first_val": result.first_val,
            "last_val": result.last_val,
            "feature_cache": None if store is None else {"hits": store.hits, "misses": store.misses},
        }
        (out / FINAL / "train_summary.json").write_text(json.dumps(summary, indent=2))
    if log is not None:
        log.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return result
