"""The SEAGULL multimodal causal LM: vision tower + MFE + projector around any HF causal LM.

The LM is fed through ``inputs_embeds``: ``<image>`` is replaced by the projected image tokens and
each ``<global>``/``<local>`` pair by the MFE tokens of one ROI, in order.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import ConfigError, ModelError, RoiError
from .config import MODEL_TYPE, SeagullConfig, get_config
from .mfe import MaskFeatureExtractor, RegionBatch
from .processor import ImageConfig, ImageInputs, SeagullProcessor, preprocess_images, to_mask_tensor
from .prompting import IGNORE_INDEX
from .vision import build_vision_tower, trunk_digest
from .weights import (
    fit_problems,
    load_safetensors,
    load_state_file,
    safetensors_metadata,
    safetensors_shapes,
    shapes_of,
)

WEIGHTS_NAME = "model.safetensors"


@dataclass
class ImageEncoding:
    """One batch of images, encoded once: tower levels, image tokens and the normalised native images."""

    features: list[torch.Tensor]  # four [B, C_l, h_l, w_l]
    image_tokens: torch.Tensor  # [B, T, hidden]
    native: list[torch.Tensor]  # normalised [3, H_i, W_i]

    def select(self, i: int) -> ImageEncoding:
        return ImageEncoding(
            [f[i : i + 1] for f in self.features], self.image_tokens[i : i + 1], [self.native[i]]
        )

    @staticmethod
    def cat(encodings: Sequence[ImageEncoding]) -> ImageEncoding:
        """One batch from several, in order."""
        if len(encodings) == 1:
            return encodings[0]
        return ImageEncoding(
            [torch.cat(level) for level in zip(*(e.features for e in encodings), strict=True)],
            torch.cat([e.image_tokens for e in encodings]),
            [n for e in encodings for n in e.native],
        )

    @property
    def nbytes(self) -> int:
        tensors = [*self.features, self.image_tokens, *self.native]
        return sum(t.numel() * t.element_size() for t in tensors)


def cache_kwarg(lm: nn.Module) -> str:
    """transformers >= 5.x names the KV cache argument ``cache``; older versions ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


def output_cache(out: Any) -> Any:
    return out["cache"] if "cache" in out else out["past_key_values"]


def expand_cache(cache: DynamicCache, n: int) -> DynamicCache:
    """A fresh cache holding the (batch 1) prefix ``n`` times, without copying until it grows."""
    return DynamicCache(
        ddp_cache_data=[
            (lay.keys.expand(n, -1, -1, -1), lay.values.expand(n, -1, -1, -1)) for lay in cache.layers
        ]
    )


class SeagullPreTrainedModel(PreTrainedModel):
    config_class = SeagullConfig
    base_model_prefix = "seagull"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        # Sub-modules initialise themselves (PyTorch defaults, the wrapped LM its own scheme); the
        # vision tower may hold pretrained weights that must not be overwritten.
        return


class _Scale(nn.Module):
    """A learnable scalar gain (stored as its log), keeping each token's magnitude information."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.log_scale.exp()


class TokenNorm(nn.Module):
    """Brings image, ``<global>`` and ``<local>`` tokens to the word-embedding scale before the LM:
    ``layernorm`` (per-token LayerNorm) or ``scale`` (one learnable gain per token kind)."""

    def __init__(self, hidden: int, scale: float, mode: str) -> None:
        super().__init__()
        if mode == "layernorm":
            self.image, self.glob, self.local = (nn.LayerNorm(hidden) for _ in range(3))
            for ln in (self.image, self.glob, self.local):
                nn.init.constant_(ln.weight, scale)
        elif mode == "scale":
            self.image, self.glob, self.local = (_Scale(scale) for _ in range(3))
        else:
            raise ConfigError(f"token_norm must be 'none', 'layernorm' or 'scale', got {mode!r}")


class SeagullForCausalLM(SeagullPreTrainedModel):
    """Vision tower -> MFE + projector -> causal LM through ``inputs_embeds``."""

    def __init__(self, config: SeagullConfig) -> None:
        super().__init__(config)
        vcfg = dict(config.vision)
        self.vision_tower = build_vision_tower({**vcfg, "weights": "none"})
        tower = self.vision_tower
        hidden = config.hidden_size
        self.mask_extractor = MaskFeatureExtractor(
            config.mfe, tower.channels, tower.feature_sizes(), tower.image_size, hidden
        )
        c_img = tower.channels[config.projector["level"]]
        if config.projector["type"] == "mlp2x_gelu":
            self.mm_projector = nn.Sequential(nn.Linear(c_img, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        else:
            self.mm_projector = nn.Sequential(nn.Linear(c_img, hidden))
        self.language_model = AutoModelForCausalLM.from_config(config.text_pretrained_config())
        scale = float(config.text_config.get("initializer_range", 0.02))
        mode = getattr(config, "token_norm", "none")
        self.token_norm = TokenNorm(hidden, scale, mode) if mode != "none" else None
        self.post_init()
        if vcfg.get("weights", "none") != "none" and not next(tower.parameters()).is_meta:
            pretrained = build_vision_tower(vcfg)  # loads the package / file weights
            tower.trunk.load_state_dict(pretrained.trunk.state_dict())
        self._cache_kw = cache_kwarg(self.language_model)
        self._keep_kw = "logits_to_keep" in inspect.signature(self.language_model.forward).parameters

    # ------------------------------------------------------------------ helpers

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def token_ids(self) -> tuple[int, int, int]:
        ids = (self.config.image_token_id, self.config.global_token_id, self.config.local_token_id)
        if any(i is None for i in ids):
            raise ConfigError("config lacks image/global/local token ids; build the model with a tokenizer")
        return ids  # type: ignore[return-value]

    def use_tower_file(self, path: str | Path) -> None:
        """Replace the tower's weights with a stage-0 ``tower.safetensors`` (train/tower/). The model then
        keeps them itself: the config says ``weights: none`` and the weights' ``digest``, and
        :meth:`save_pretrained` writes them with the rest."""
        tower = self.vision_tower
        tower.load_trunk_state(load_state_file(path), str(path), ("classifier.", "head."))
        self.config.vision = {
            **self.config.vision,
            "weights": "none",
            "weights_path": None,
            "digest": trunk_digest(tower.trunk.state_dict()),
        }

    # ------------------------------------------------------------------ encoders

    def encode_images(self, images: list[Any]) -> ImageEncoding:
        """Images (any size) -> tower levels at ``image_size`` squared, projected image tokens, native copies,
        prepared as this model's config says (:class:`~seagull.model.processor.ImageConfig`)."""
        return self.encode_pixels(preprocess_images(images, ImageConfig.of_model(self.config), self.device))

    def encode_pixels(self, inputs: ImageInputs) -> ImageEncoding:
        """Preprocessed images (:meth:`SeagullProcessor.images`) -> tower levels, image tokens, native copies."""
        native = inputs.native
        features = self.vision_tower(inputs.pixel_values)
        level = features[self.config.projector["level"]]
        grid = self.config.projector["token_grid"]
        if grid:
            level = F.adaptive_avg_pool2d(level, grid)
        proj_dtype = next(self.mm_projector.parameters()).dtype
        tokens = self.mm_projector(level.flatten(2).transpose(1, 2).to(proj_dtype))
        return ImageEncoding(features, tokens, native)

    def encode_regions(self, enc: ImageEncoding, masks: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``masks[i]``: ``[R_i, H_i, W_i]`` at the native size of image i -> (global, local) ``[sum R, hidden]``."""
        mlist = [to_mask_tensor(m) for m in masks]
        for i, (m, n) in enumerate(zip(mlist, enc.native, strict=True)):
            if m.shape[0] and tuple(m.shape[1:]) != tuple(n.shape[1:]):
                raise RoiError(
                    f"image {i}: masks are {m.shape[2]}x{m.shape[1]} but the image is {n.shape[2]}x{n.shape[1]}; "
                    "give masks at the image's size"
                )
        return self.mask_extractor(enc.features, enc.native, RegionBatch(mlist), self.vision_tower)

    # ------------------------------------------------------------------ sequence assembly

    def embed_sequence(
        self,
        ids: torch.Tensor,
        image_tokens: torch.Tensor | None,
        regions: tuple[torch.Tensor, torch.Tensor] | None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One unpadded sequence ``[L]`` -> embeddings ``[L', hidden]`` (and labels) with image/ROI tokens spliced."""
        image_id, global_id, local_id = self.token_ids()
        emb_layer = self.get_input_embeddings()
        emb = emb_layer(ids.clamp_min(0))
        g_pos = (ids == global_id).nonzero().flatten()
        l_pos = (ids == local_id).nonzero().flatten()
        n_roi = 0 if regions is None else regions[0].shape[0]
        if len(g_pos) != n_roi or len(l_pos) != n_roi:
            raise RoiError(
                f"the prompt has {len(g_pos)} <global> and {len(l_pos)} <local> tokens but {n_roi} ROI(s) were given; "
                "write one '<global><local>' pair per ROI"
            )
        if n_roi:
            if bool((l_pos <= g_pos).any()):
                raise RoiError("every <local> must follow its <global> in the prompt")
            glob, local = regions
            if self.token_norm is not None:
                glob, local = self.token_norm.glob(glob), self.token_norm.local(local)
            emb = emb.clone()
            emb[g_pos] = glob.to(emb.dtype)
            emb[l_pos] = local.to(emb.dtype)
        img_pos = (ids == image_id).nonzero().flatten()
        if len(img_pos) > 1:
            raise ModelError(
                f"the prompt holds {len(img_pos)} <image> tokens; one image per sequence is supported"
            )
        if len(img_pos) == 1:
            if image_tokens is None:
                raise ModelError("the prompt holds <image> but no image was given")
            p = int(img_pos[0])
            if self.token_norm is not None:
                image_tokens = self.token_norm.image(image_tokens)
            emb = torch.cat([emb[:p], image_tokens.to(emb.dtype), emb[p + 1 :]])
            if labels is not None:
                fill = labels.new_full((image_tokens.shape[0],), IGNORE_INDEX)
                labels = torch.cat([labels[:p], fill, labels[p + 1 :]])
        return emb, labels

    def build_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor | None,
        enc: ImageEncoding | None,
        region_tokens: tuple[torch.Tensor, torch.Tensor] | None,
        roi_counts: list[int],
        padding_side: str = "right",
        position_offset: int = 0,
    ) -> dict[str, torch.Tensor | None]:
        """Padded ids ``[B, L]`` -> ``inputs_embeds``, ``attention_mask``, ``position_ids``, ``labels``."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        starts = np.cumsum([0, *roi_counts])
        seqs, labs = [], []
        for b in range(input_ids.shape[0]):
            keep = attention_mask[b].bool()
            regions = None
            if region_tokens is not None and roi_counts[b]:
                regions = (
                    region_tokens[0][starts[b] : starts[b + 1]],
                    region_tokens[1][starts[b] : starts[b + 1]],
                )
            emb, lab = self.embed_sequence(
                input_ids[b][keep],
                None if enc is None else enc.image_tokens[min(b, enc.image_tokens.shape[0] - 1)],
                regions,
                None if labels is None else labels[b][keep],
            )
            seqs.append(emb)
            labs.append(lab)
        n = max(s.shape[0] for s in seqs)
        hidden = seqs[0].shape[1]
        embeds = seqs[0].new_zeros((len(seqs), n, hidden))
        mask = torch.zeros((len(seqs), n), dtype=torch.long, device=embeds.device)
        out_labels = (
            None
            if labels is None
            else torch.full((len(seqs), n), IGNORE_INDEX, dtype=torch.long, device=embeds.device)
        )
        for i, s in enumerate(seqs):
            sl = slice(0, s.shape[0]) if padding_side == "right" else slice(n - s.shape[0], n)
            embeds[i, sl] = s
            mask[i, sl] = 1
            if out_labels is not None:
                out_labels[i, sl] = labs[i]
        position_ids = (mask.cumsum(1) - 1).clamp_min(0) + position_offset
        return {
            "inputs_embeds": embeds,
            "attention_mask": mask,
            "position_ids": position_ids,
            "labels": out_labels,
        }

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        images: list[Any] | None = None,
        masks: list[Any] | None = None,
        image_encoding: ImageEncoding | None = None,
        **lm_kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Training / scoring forward.

        ``images``: one per sequence (HxWx3 uint8 arrays or [3, H, W] tensors, any size);
        ``masks``: one ``[R_i, H_i, W_i]`` bool array per image, in the order of the
        ``<global><local>`` pairs in its sequence. Returns the LM output (``loss`` when ``labels``).
        """
        enc = image_encoding
        if enc is None and images is not None:
            if len(images) != input_ids.shape[0]:
                raise ModelError(
                    f"{len(images)} images for {input_ids.shape[0]} sequences; give one image per sequence"
                )
            enc = self.encode_images(images)
        region_tokens, counts = None, [0] * input_ids.shape[0]
        if masks is not None:
            if enc is None:
                raise ModelError("masks were given without images")
            region_tokens = self.encode_regions(enc, masks)
            counts = [int(to_mask_tensor(m).shape[0]) for m in masks]
        inputs = self.build_inputs(
            input_ids.to(self.device),
            None if attention_mask is None else attention_mask.to(self.device),
            None if labels is None else labels.to(self.device),
            enc,
            region_tokens,
            counts,
        )
        return self.language_model(
            inputs_embeds=inputs["inputs_embeds"],
            attention_mask=inputs["attention_mask"],
            position_ids=inputs["position_ids"],
            labels=inputs["labels"],
            **lm_kwargs,
        )

    def run_lm(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any = None,
        use_cache: bool = True,
        logits_to_keep: int = 0,
    ) -> tuple[torch.Tensor, Any]:
        """LM call returning ``(logits, cache)``, across transformers versions (0 keeps all logits)."""
        kwargs: dict[str, Any] = {self._cache_kw: cache} if cache is not None else {}
        if logits_to_keep and self._keep_kw:
            kwargs["logits_to_keep"] = logits_to_keep
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **kwargs,
        )
        return out.logits, (output_cache(out) if use_cache else None)

    def attention_mask_4d(self, allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """``allowed [B, Q, K]`` (True: query q may attend to key k, the cached keys first) -> the 4-D
        mask ``[B, 1, Q, K]`` that the LM's attention implementation takes as it is (transformers
        passes a 4-D mask through unchanged): boolean for SDPA, additive (0 or the dtype's most
        negative value) for eager attention; None for an implementation that takes no custom mask."""
        impl = getattr(self.language_model.config, "_attn_implementation", None)
        if impl == "sdpa":
            return allowed[:, None]
        if impl == "eager":
            full = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
            return full.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
        return None

    # ------------------------------------------------------------------ persistence

    def save_pretrained(  # type: ignore[override]
        self, save_directory: str | Path, dtype: torch.dtype | None = None, tokenizer: Any = None, **_: Any
    ) -> None:
        """config.json + model.safetensors (+ the tokenizer and processor_config.json when ``tokenizer``, a
        tokenizer or a :class:`SeagullProcessor`, is given).

        Package-provided tower weights and tied copies are not written; :func:`load_model` restores them.
        """
        if self.vision_tower.fused:
            raise ModelError(
                "this model's tower was fused for inference; save the model loaded before fusing"
            )
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        if tokenizer is not None:  # with processor_config.json: the model's input side
            processor = tokenizer if isinstance(tokenizer, SeagullProcessor) else None
            (processor or SeagullProcessor.from_model(self, tokenizer)).save_pretrained(out)
        sd = self.state_dict()
        if self.config.vision.get("weights") == "package":
            sd = {k: v for k, v in sd.items() if not k.startswith("vision_tower.")}
        seen: dict[int, str] = {}
        tied: dict[str, str] = {}
        tensors: dict[str, torch.Tensor] = {}
        for k, v in sd.items():
            ptr = v.data_ptr()
            if ptr in seen and v.numel():
                tied[k] = seen[ptr]
                continue
            seen[ptr] = k
            t = v.detach().to("cpu")
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            tensors[k] = t.contiguous()
        self.config.architectures = [type(self).__name__]
        self.config.save_pretrained(str(out))
        save_file(tensors, str(out / WEIGHTS_NAME), metadata={"format": "pt", "tied": json.dumps(tied)})

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, *_: Any, **kwargs: Any
    ) -> SeagullForCausalLM:  # type: ignore[override]
        """Load a folder written by :meth:`save_pretrained` (local folders only; no download)."""
        return load_model(
            pretrained_model_name_or_path, dtype=kwargs.get("dtype") or kwargs.get("torch_dtype")
        )


def build_model(
    config_name_or_path: str | Path | SeagullConfig, tokenizer: Any = None, **overrides: Any
) -> SeagullForCausalLM:
    """A randomly initialised model (tower weights from the package/file where the config says so).

    With a ``tokenizer`` the LM vocabulary and the ``<image>``/``<global>``/``<local>`` ids follow it.
    """
    cfg = get_config(config_name_or_path, **overrides)
    if tokenizer is not None:
        from .. import templates as T

        ids = [tokenizer.convert_tokens_to_ids(t) for t in (T.IMAGE_TOKEN, T.GLOBAL_TOKEN, T.LOCAL_TOKEN)]
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ModelError(
                "the tokenizer lacks <image>, <global> or <local>; train it with seagull.model.tokenizer"
            )
        cfg.image_token_id, cfg.global_token_id, cfg.local_token_id = ids
        cfg.text_config = {
            **cfg.text_config,
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
    return SeagullForCausalLM(cfg)


# Options a trained model can be extended with (for fine-tuning) and the parameters each one adds;
# every such module starts as a no-op, so the extended model computes what the trained one did.
EXTENSIONS = {("mfe", "lowlevel_rest"): "mask_extractor.rest_proj."}


def load_model(
    path: str | Path,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    extend: dict[str, dict[str, Any]] | None = None,
) -> SeagullForCausalLM:
    """Load a saved SEAGULL folder (config.json + model.safetensors), restoring package tower weights.

    ``extend`` (e.g. ``{"mfe": {"lowlevel_rest": True}}``) turns on :data:`EXTENSIONS` before loading;
    their new parameters keep their no-op initialisation.
    """
    p = Path(path)
    if not (p / "config.json").is_file() or not (p / WEIGHTS_NAME).is_file():
        raise ModelError(f"{p} is not a saved SEAGULL model folder (config.json and {WEIGHTS_NAME} expected)")
    new_keys: list[str] = []
    for section, options in (extend or {}).items():
        if not isinstance(options, dict):
            raise ConfigError(f"extend[{section!r}] must map option names to values, got {options!r}")
        for option in options:
            if (section, option) not in EXTENSIONS:
                allowed = ", ".join(f"{a}.{b}" for a, b in EXTENSIONS)
                raise ConfigError(
                    f"a trained model can only be extended with {allowed}; got {section}.{option}"
                )
            new_keys.append(EXTENSIONS[(section, option)])
    try:
        cfg = get_config(p, **{k: dict(v) for k, v in (extend or {}).items()})
    except ConfigError as e:
        raise ModelError(f"model folder {p}: {e}") from e
    if cfg.model_type != MODEL_TYPE:
        raise ModelError(f"{p}/config.json is not a SEAGULL config")
    try:
        model = SeagullForCausalLM(cfg)
    except ConfigError as e:
        raise ModelError(f"{p / 'config.json'}: {e}") from e
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise ModelError(
            f"{p / 'config.json'} describes no model this package can build ({type(e).__name__}: {e}); "
            "the file is damaged or edited: copy the model folder again"
        ) from e
    weights = p / WEIGHTS_NAME
    metadata = safetensors_metadata(weights)
    try:
        tied = json.loads(metadata.get("tied", "{}"))
    except json.JSONDecodeError:
        tied = None
    if not isinstance(tied, dict):
        raise ModelError(f"{weights}: its metadata 'tied' is not a JSON object; copy the model folder again")
    own = shapes_of(model.state_dict())
    may_miss = set(tied) | {k for k in own if new_keys and k.startswith(tuple(new_keys))}
    if cfg.vision.get("weights") == "package":
        may_miss |= {k for k in own if k.startswith("vision_tower.")}
    problems = fit_problems(own, safetensors_shapes(weights), may_miss)
    if problems:
        raise ModelError(
            f"{weights} does not fit {p / 'config.json'}: {problems}; the two files come from different "
            "models: copy both from one model folder"
        )
    model.load_state_dict(load_safetensors(weights), strict=False)
    if tied:
        model.language_model.tie_weights()
    if dtype is not None:
        model = model.to(dtype)
    return model.to(device).eval()
