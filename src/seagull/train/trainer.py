"""The training loop on ``accelerate``: parts to train, LoRA through peft, resume, final folder.

A step is one optimizer update: ``grad_accum`` micro-batches of ``batch_images`` images per process.
Micro-batch ``m`` of the run always holds the same images and conversations (drawn from
``(seed, epoch, index)``) and the RNG is re-seeded from ``(seed, m)`` before it, so a run killed
after a checkpoint and resumed gives the same final weights as one that never stopped. Checkpoint
files (safetensors and JSON, no pickle) are written and read by :mod:`.checkpoint`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..model import build_model, load_model
from ..model.processor import SeagullProcessor
from ..model.seagull import SeagullForCausalLM
from .checkpoint import (
    CHECKPOINTS,
    checkpoint_dirs,
    commit_checkpoint,
    find_resume_checkpoint,
    load_checkpoint,
    write_checkpoint,
)
from .config import TrainConfig
from .data import ConversationDataset, ImageRef, collate, load_images, step_indices
from .features import FeatureStore, supports_split
from .region_heads import RegionHeads
from .step import TrainStep, answer_word_weights
from .tracking import MetricsLog
from .validate import validate

FINAL = "final"


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
    """Stage 1: a new model from a named config; stage 2: a trained model folder (``model_overrides``
    may only turn on the extensions a trained model takes, :data:`seagull.model.seagull.EXTENSIONS`).
    Either way ``cfg.tower`` (a stage-0 tower) replaces the tower's weights."""
    p = Path(cfg.model)
    if p.is_dir() and (p / "model.safetensors").is_file():
        model = load_model(p, extend=dict(cfg.model_overrides) or None)
        if model.config.text_config["vocab_size"] != len(tokenizer):
            raise ConfigError(
                f"tokenizer has {len(tokenizer)} tokens but {p} was trained with "
                f"{model.config.text_config['vocab_size']}; use the tokenizer saved in {p}"
            )
    else:
        model = build_model(cfg.model, tokenizer=tokenizer, **dict(cfg.model_overrides))
    if cfg.tower is not None:
        model.use_tower_file(cfg.tower)
    return model.train()


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
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(cfg.optim.warmup_steps, total, cfg.optim.scheduler)
    )


def lr_factor(warm: int, total: int, kind: str = "cosine") -> Any:
    """The learning-rate multiplier per step: linear warm-up over ``warm`` steps, then ``kind``."""

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        frac = (step - warm) / max(1, total - warm)
        return max(0.0, 1 - frac) if kind == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return factor


def total_steps(cfg: TrainConfig, n_images: int, world: int) -> int:
    if cfg.max_steps:
        return int(cfg.max_steps)
    per_step = cfg.batch_images * world * cfg.grad_accum
    return max(1, math.ceil(cfg.epochs * n_images / per_step))


# --------------------------------------------------------------------------- the loop


def _val_images(cfg: TrainConfig) -> list[ImageRef]:
    folders = cfg.data.val or cfg.data.train
    try:
        return load_images(folders, cfg.data.val_split)
    except Exception as e:  # a missing split is a config error, raised before training
        raise ConfigError(f"validation data {folders} split {cfg.data.val_split!r}: {e}") from e


def save_final(model: SeagullForCausalLM, processor: SeagullProcessor, cfg: TrainConfig, out: Path) -> Path:
    """``final/``: config.json + model.safetensors + the processor (tokenizer, processor_config.json),
    loadable by ``from_pretrained``."""
    final = out / FINAL
    final.mkdir(parents=True, exist_ok=True)
    from peft import PeftModel

    if isinstance(model.language_model, PeftModel):
        if cfg.lora.merge:
            model.language_model = model.language_model.merge_and_unload()
        else:
            model.language_model.save_pretrained(str(final / "lora_adapter"))
            model.language_model = model.language_model.unload()  # base weights without the adapters
    model.save_pretrained(final, tokenizer=processor)
    cfg.dump(final / "train_config.yaml")
    return final


def make_accelerator(cfg: TrainConfig) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin, DistributedDataParallelKwargs

    plugin = None
    if cfg.deepspeed:
        plugin = DeepSpeedPlugin(hf_ds_config=str(cfg.deepspeed), gradient_accumulation_steps=cfg.grad_accum)
        # No DataLoader goes through accelerate, so fill the "auto" sizes it would have taken from one.
        ds = plugin.deepspeed_config
        ds["train_micro_batch_size_per_gpu"] = cfg.batch_images
        ds["gradient_clipping"] = cfg.optim.max_grad_norm
        ds.pop("train_batch_size", None)
    return Accelerator(
        mixed_precision=resolve_precision(cfg.mixed_precision),
        gradient_accumulation_steps=cfg.grad_accum,
        cpu=not torch.cuda.is_available(),
        deepspeed_plugin=plugin,
        step_scheduler_with_optimizer=False,
        # Some MFE weights are unused by design (e.g. self-attention queries of independent ROIs).
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


class Trainer:
    """One run: :meth:`setup` (inputs checked, parts built), :meth:`restore`, :meth:`run` (the steps,
    checkpoints and validation) and :meth:`finish` (final folder); :func:`train` calls them in order.

    ``model`` and ``tokenizer``, when given, are trained instead of the ones ``cfg.model`` names (e.g. a
    model from :func:`seagull.model.load_released`, already on its device)."""

    def __init__(
        self,
        cfg: TrainConfig,
        resume: bool = False,
        model: SeagullForCausalLM | None = None,
        tokenizer: Any = None,
    ) -> None:
        self.cfg = cfg
        self.given = (model, tokenizer)
        self.resume = resume
        self.out = Path(cfg.output_dir)
        self.fingerprint = cfg.digest()
        self.resume_from: tuple[Path, dict[str, Any]] | None = None
        self.start = 0
        self.log: MetricsLog | None = None

    # ------------------------------------------------------------------ setup

    def check_output(self, world: int) -> None:
        """Checkpoint checks that need no compute: a resume has a checkpoint it can continue from."""
        if self.resume:
            if self.cfg.deepspeed:
                raise ConfigError(
                    "--resume is not available for DeepSpeed runs (their sharded state is not checkpointed); "
                    "start a new run"
                )
            self.resume_from = find_resume_checkpoint(self.out, self.fingerprint, world)
        elif checkpoint_dirs(self.out):
            raise ConfigError(
                f"{self.out} already holds checkpoints; pass --resume to continue or choose another --output"
            )

    def setup(self) -> None:
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.accelerator = acc = make_accelerator(cfg)
        self.world, self.rank = acc.num_processes, acc.process_index
        self.check_output(self.world)  # everything that can be wrong with the inputs, before any compute
        torch.manual_seed(cfg.seed)
        model, self.tokenizer = self.given
        if model is None:
            self.tokenizer = load_tokenizer_for(cfg)
            model = build_for_training(cfg, self.tokenizer)
        elif self.tokenizer is None:
            raise ConfigError("Trainer(model=...) needs the model's tokenizer too")
        model.train()
        check_against_model(cfg, model)
        self.processor = SeagullProcessor.from_model(model, self.tokenizer)
        self.images = load_images(
            cfg.data.train,
            cfg.data.train_split,
            cfg.data.image_limit,
            cfg.data.train_repeat,
            cfg.data.train_ranked,
        )
        if len(self.images) < 1:
            raise ConfigError(
                f"no labelled training records in {cfg.data.train} split {cfg.data.train_split!r}"
            )
        self.val_images = _val_images(cfg)
        model = set_trainable(cfg, model)
        self.dataset = ConversationDataset(
            self.images,
            self.tokenizer,
            int(model.config.image_token_id),
            mode=cfg.data.conversations,
            task_mix=dict(cfg.data.task_mix),
            convs_per_image=cfg.data.convs_per_image,
            turns_per_conversation=cfg.data.turns_per_conversation,
            max_length=cfg.data.max_length,
            seed=cfg.seed,
            every_roi=cfg.aux.rank_weight > 0,
        )
        self.store = (
            FeatureStore(model, cfg.feature_cache, cfg.cache_dir) if cfg.feature_cache != "none" else None
        )
        heads = RegionHeads(model.config.hidden_size) if cfg.aux.weight > 0 else None
        weights = None
        if cfg.aux.answer_word_weight != 1.0:
            weights = answer_word_weights(self.tokenizer, len(self.tokenizer), cfg.aux.answer_word_weight)
        processor = self.processor if cfg.aux.rank_weight > 0 else None
        step_module = TrainStep(
            model.to(acc.device),
            self.store,
            heads,
            cfg.aux.weight,
            cfg.aux.image_dropout,
            weights,
            rank_weight=cfg.aux.rank_weight,
            processor=processor,
        ).to(acc.device)
        self.params = [p for p in step_module.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            self.params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, betas=cfg.optim.betas
        )
        self.total = total_steps(cfg, len(self.images), self.world)
        self.scheduler = make_scheduler(cfg, optimizer, self.total)
        self.step_module, self.optimizer = acc.prepare(step_module, optimizer)
        self.inner: SeagullForCausalLM = acc.unwrap_model(self.step_module).model

    def restore(self) -> int:
        """Load the checkpoint chosen by :meth:`check_output` (if resuming); returns the first step to run."""
        if self.resume_from is not None:
            folder, state = self.resume_from
            module = self.accelerator.unwrap_model(self.step_module)
            load_checkpoint(folder, state, module, self.optimizer, self.scheduler, self.accelerator.scaler)
            self.start = int(state["step"])
        return self.start

    # ------------------------------------------------------------------ the steps

    def train_step(self, step: int) -> tuple[float, dict[str, float], int]:
        """One optimizer update; returns (mean loss, mean loss parts, epoch of its last micro-batch)."""
        cfg, acc = self.cfg, self.accelerator
        per_micro = cfg.batch_images * self.world
        running, parts = 0.0, {}
        for a in range(cfg.grad_accum):
            micro = step * cfg.grad_accum + a
            epoch, idx = step_indices(len(self.images), cfg.seed, micro, per_micro)
            mine = idx[self.rank * cfg.batch_images : (self.rank + 1) * cfg.batch_images]
            torch.manual_seed(cfg.seed * 1_000_003 + micro)  # dropout etc. depend only on the micro-batch
            batch = collate([self.dataset.item(i, epoch) for i in mine], int(self.tokenizer.pad_token_id))
            with acc.accumulate(self.step_module):
                loss = self.step_module(batch, lm=step >= cfg.aux.warmup_steps)
                acc.backward(loss)
                if acc.sync_gradients and cfg.optim.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.params, cfg.optim.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
            running += float(loss.detach())
            for k, v in acc.unwrap_model(self.step_module).last_parts.items():
                parts[k] = parts.get(k, 0.0) + v
        self.scheduler.step()
        n = cfg.grad_accum
        return running / n, {k: v / n for k, v in parts.items()}, epoch

    def save_checkpoint(self, done: int, epoch: int) -> Path | None:
        """``checkpoints/step-<done>/`` (see :mod:`.checkpoint`), written by the main process."""
        acc = self.accelerator
        if self.cfg.deepspeed:
            return None  # ZeRO shards the optimizer state; these runs are not resumable (see check_output)
        final = self.out / CHECKPOINTS / f"step-{done}"
        tmp = self.out / CHECKPOINTS / f".tmp-step-{done}"
        acc.wait_for_everyone()
        if acc.is_main_process:
            if tmp.exists():
                shutil.rmtree(tmp)
            state = {
                "step": done,
                "epoch": epoch,
                "micro_batches": done * self.cfg.grad_accum,
                "seeds": {"data": self.cfg.seed, "micro_batch": "seed * 1000003 + micro_batch"},
                "data_order": {
                    "seed": self.cfg.seed,
                    "images": len(self.images),
                    "images_per_micro_batch": self.cfg.batch_images * self.world,
                },
                "config_hash": self.fingerprint,
                "world_size": self.world,
            }
            module = acc.unwrap_model(self.step_module)
            write_checkpoint(tmp, module, self.optimizer, self.scheduler, state, acc.scaler)
            commit_checkpoint(tmp, final, self.out, self.cfg.keep_checkpoints)
        acc.wait_for_everyone()
        return final

    def validate(self, step: int) -> dict[str, float]:
        res = validate(self.inner, self.processor, self.val_images, self.store, self.cfg.data.val_max_rois)
        if self.log is not None:
            self.log.log(step, "val", **res.to_dict())
        return res.to_dict()

    def run(self) -> TrainResult:
        """The steps from :attr:`start`, with logging, checkpoints and validation."""
        cfg, acc, total, start = self.cfg, self.accelerator, self.total, self.start
        main = acc.is_main_process
        self.log = MetricsLog(self.out, cfg.tensorboard, start) if main else None
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.dump(self.out / "train_config.yaml")
        result = TrainResult(self.out, self.out / FINAL, total, 0.0, 0.0, is_main=main)
        if self.val_images and cfg.val_at_start and start == 0:
            result.first_val = self.validate(0)
        bar = None
        if cfg.progress and main:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)
        t0 = time.perf_counter()
        images_per_step = cfg.batch_images * self.world * cfg.grad_accum
        self.step_module.train()
        for step in range(start, total):
            loss, parts, epoch = self.train_step(step)
            result.losses.append(loss)
            done = step + 1
            if self.log is not None and (done % cfg.log_every == 0 or done == total):
                elapsed = time.perf_counter() - t0
                self.log.log(
                    done,
                    "train",
                    epoch=epoch,
                    loss=loss,
                    lr=self.scheduler.get_last_lr()[0],
                    images_per_s=(done - start) * images_per_step / max(elapsed, 1e-9),
                    elapsed_s=elapsed,
                    **parts,
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
            if done % cfg.save_every == 0 or done == total:
                self.save_checkpoint(done, epoch)
            if self.val_images and (done % cfg.val_every == 0 or done == total):
                result.last_val = self.validate(done)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.3f}", q_srcc=f"{result.last_val['quality_srcc']:.3f}")
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - t0
        result.steps_per_s = (total - start) / max(result.seconds, 1e-9)
        return result

    def finish(self, result: TrainResult) -> TrainResult:
        """Write ``final/`` and its summary (main process) and close the run."""
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            save_final(self.inner, self.processor, self.cfg, self.out)
            store = self.store
            summary = {
                "steps": self.total,
                "resumed_from": self.start,
                "seconds": result.seconds,
                "steps_per_s": result.steps_per_s,
                "world_size": self.world,
                "first_val": result.first_val,
                "last_val": result.last_val,
                "feature_cache": None if store is None else {"hits": store.hits, "misses": store.misses},
            }
            (self.out / FINAL / "train_summary.json").write_text(json.dumps(summary, indent=2))
        if self.log is not None:
            self.log.close()
        acc.wait_for_everyone()
        acc.end_training()
        return result


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Run (or resume) the configured training; returns where the final model is and what happened."""
    trainer = Trainer(cfg, resume)
    trainer.setup()
    trainer.restore()
    return trainer.finish(trainer.run())
