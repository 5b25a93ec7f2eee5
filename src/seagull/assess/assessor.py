"""Assessor: image + ROIs -> quality, importance and distortions per ROI, from one image encoding.

Per image the vision tower runs once and the shared prompt prefix (system text, ``<image>`` tokens,
preamble up to the region) runs through the LM once; its key/value cache is reused by every
ROI-question suffix, which are batched. ROIs go through the MFE and the LM in chunks of ``roi_chunk``,
so the memory of one call does not grow with the number of ROIs beyond their small result records
(and the ROIs the caller holds; see :class:`seagull.assess.roi_list.RoiList` for a compact list).

The cost of a call is bounded by design, not by the photo's pixels: a photo whose longer side exceeds
``max_side`` (default :data:`DEFAULT_MAX_SIDE`) is assessed on a copy shrunk to it, its ROI masks with
it; results keep the ROIs' boxes and areas in the original pixels. Every photo of the evaluation
suites (at most 1,024 px) is assessed exactly as before; a 12 MP phone photo costs about what a
1-MP one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.cache_utils import DynamicCache

from ..errors import ModelError, RoiError
from ..imageio import (
    DEFAULT_MAX_PIXELS,
    MIN_IMAGE_SIDE,
    check_image_side,
    fit_longest_side,
    load_image,
    resize_mask,
)
from ..labels import TASKS
from ..model.processor import AFTER_SEVERITY, GENERATION, IMPORTANCE, QUALITY, WITH, Prompt, SeagullProcessor
from ..model.prompting import pad_batch
from ..model.scoring import PRESENCE_THRESHOLD, RegionScorer, RoiLogits, greedy_generate, parse_answer
from ..model.seagull import ImageEncoding, SeagullForCausalLM, expand_cache, load_model
from ..region_prediction import RegionPrediction
from ..roi import Roi, check_roi_size
from .image_cache import ImageCache, image_digest

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
# ROIs per MFE + LM pass. Each ROI in flight costs about 10 MB with the shipped model (its native
# window through the tower, its low-level statistics at image size); 32 keep a call within a few
# hundred MB at any ROI count and batch the LM's 64-row passes fully (2 questions per ROI).
DEFAULT_ROI_CHUNK = 32
# The working resolution: the longer side of the copy a larger photo is assessed on. Above every photo
# the model was trained and measured on (at most 1,024 px), so their results do not change.
DEFAULT_MAX_SIDE = 1024


@dataclass
class _Item:
    """One ROI-question suffix: which ROI, which prompt, which logits positions to keep."""

    roi: int
    image: int
    key: Prompt


@dataclass
class _CachedImage:
    """What one image contributes before any region: its encoding and its LM prefix cache (per layer)."""

    encoding: ImageEncoding
    prefix: list[tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def take(cls, enc: ImageEncoding, cache: DynamicCache, i: int) -> _CachedImage:
        """Image ``i`` of a batch, copied so that the batch's tensors are not kept alive."""
        one = enc.select(i)
        return cls(
            ImageEncoding(
                [f.clone() for f in one.features], one.image_tokens.clone(), [n.clone() for n in one.native]
            ),
            [(lay.keys[i : i + 1].clone(), lay.values[i : i + 1].clone()) for lay in cache.layers],
        )

    @property
    def nbytes(self) -> int:
        return self.encoding.nbytes + sum(t.numel() * t.element_size() for kv in self.prefix for t in kv)


def _working_mask(mask: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A ROI mask at the working copy's size: nearest neighbour, or, where that loses a small ROI
    entirely, every working pixel it covers at all."""
    small = resize_mask(mask, size_hw)
    if small is mask or small.any():
        return small
    import cv2

    cover = cv2.resize(mask.astype(np.float32), (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
    return cover > 0


def default_model_dir() -> Path:
    if (DEFAULT_WEIGHTS_DIR / "config.json").is_file():
        return DEFAULT_WEIGHTS_DIR
    raise ModelError(
        f"the default model's files are missing from {DEFAULT_WEIGHTS_DIR} (a broken install?): reinstall "
        "seagull, or pass a model folder, e.g. Assessor('path/to/model') (written by `seagull train`)"
    )


class Assessor:
    """``Assessor(model_path_or_model, device="cpu")``; ``assess(image, rois) -> list[RegionPrediction]``.

    The input side is a :class:`~seagull.model.processor.SeagullProcessor`: the model folder's, or for a
    model object the one its config and ``tokenizer`` describe, or ``processor=``. The output side is a
    :class:`~seagull.model.scoring.RegionScorer` (``self.scorer``).
    """

    max_pixels = DEFAULT_MAX_PIXELS  # larger images are refused; set it on an instance to allow more

    def __init__(
        self,
        model: str | Path | SeagullForCausalLM | None = None,
        device: str | torch.device = "cpu",
        tokenizer: Any = None,
        batch_size: int = 64,
        max_new_tokens: int = 40,
        presence_threshold: float = PRESENCE_THRESHOLD,
        image_cache_mb: float = 0,
        roi_chunk: int = DEFAULT_ROI_CHUNK,
        processor: SeagullProcessor | None = None,
        max_side: int | None = DEFAULT_MAX_SIDE,
    ) -> None:
        from ..model.tokenizer import load_tokenizer

        if model is None:
            model = default_model_dir()
        if isinstance(model, (str, Path)):
            path = Path(model)
            self.model = load_model(path, device=device)
            if self.model.vision_tower.frozen:  # this Assessor owns the model: fold it for speed
                self.model.vision_tower.fuse_for_inference()
            if processor is None:
                processor = SeagullProcessor.from_pretrained(path, tokenizer=tokenizer)
        elif isinstance(model, SeagullForCausalLM):
            self.model = model.to(device).eval()
        else:
            raise ModelError(f"model must be a folder or a SeagullForCausalLM, got {type(model).__name__}")
        if processor is None:
            if tokenizer is None:
                raise ModelError("pass tokenizer= (object or folder) together with a model object")
            tok = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
            processor = SeagullProcessor.from_model(self.model, tok)
        processor.check_model(self.model)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.presence_threshold = float(presence_threshold)
        if int(roi_chunk) < 1:
            raise ModelError(f"roi_chunk must be at least 1 ROI per pass, got {roi_chunk}")
        self.roi_chunk = int(roi_chunk)
        if max_side is not None and int(max_side) < MIN_IMAGE_SIDE:
            raise ModelError(f"max_side must be at least {MIN_IMAGE_SIDE} pixels or None, got {max_side}")
        self.max_side = None if max_side is None else int(max_side)
        # Per-image work reused for repeated photos (interactive use); 0 = off.
        self.image_cache = ImageCache(int(image_cache_mb * 2**20))
        self._prepare_prompts()

    # ------------------------------------------------------------------ prompts

    def _prepare_prompts(self) -> None:
        """The processor's prompts split at the first region token: a shared prefix and one suffix each."""
        image_id, global_id, _ = self.model.token_ids()
        self.scorer = RegionScorer.from_processor(self.processor, self.presence_threshold)
        self.suffixes: dict[Prompt, list[int]] = {}
        prefix: list[int] | None = None
        for key, ids in self.processor.prompts.items():
            if global_id not in ids:
                raise ModelError("the tokenizer does not keep <global> as one token")
            k = ids.index(global_id)  # everything before the first region token is shared
            if prefix is None:
                prefix = ids[:k]
            elif ids[:k] != prefix:
                raise ModelError("prompts tokenise to different prefixes; the shared KV cache cannot be used")
            self.suffixes[key] = ids[k:]
        self.prefix_ids = prefix or []
        if image_id not in self.prefix_ids:
            raise ModelError("the prompt prefix holds no <image> token")
        self.image_at = self.prefix_ids.index(image_id)
        self._system: DynamicCache | None = None
        # The tokens that continue "... With" for each severity word (fed on top of its cached suffix).
        self.severity_tokens = self.processor.severity_tokens

    # ------------------------------------------------------------------ model passes

    @torch.inference_mode()
    def _system_cache(self) -> DynamicCache:
        """The LM cache of the prompt text before ``<image>`` (the same for every image), computed once."""
        if self._system is None:
            ids = torch.tensor(self.prefix_ids[: self.image_at], device=self.device)
            embeds = self.model.embed_sequence(ids, None, None)[0][None]
            length = embeds.shape[1]
            mask = torch.ones((1, length), dtype=torch.long, device=self.device)
            _, self._system = self.model.run_lm(
                embeds, mask, torch.arange(length, device=self.device)[None], logits_to_keep=1
            )
        return self._system

    @torch.inference_mode()
    def _prefix_cache(self, image_tokens: torch.Tensor) -> DynamicCache:
        """The LM cache of the shared prompt prefix for each image: the cached system text, then the
        image tokens and the text up to the first region token."""
        ids = torch.tensor(self.prefix_ids[self.image_at :], device=self.device)  # starts with <image>
        embeds = torch.stack(
            [self.model.embed_sequence(ids, image_tokens[b], None)[0] for b in range(image_tokens.shape[0])]
        )
        n, length = embeds.shape[:2]
        start = self.image_at
        mask = torch.ones((n, start + length), dtype=torch.long, device=self.device)
        pos = torch.arange(start, start + length, device=self.device)[None].expand(n, -1)
        _, cache = self.model.run_lm(
            embeds, mask, pos, expand_cache(self._system_cache(), n), logits_to_keep=1
        )
        return cache

    def _encode_images(self, arrays: list[np.ndarray]) -> ImageEncoding:
        """The processor prepares the images, the model encodes them."""
        return self.model.encode_pixels(self.processor.images(arrays, self.model.device))

    @torch.inference_mode()
    def _encode(self, arrays: list[np.ndarray]) -> tuple[ImageEncoding, DynamicCache]:
        """The images' encodings and LM prefix caches. With the image cache on, images seen before
        come from it and only the others run through the tower and the LM."""
        if not self.image_cache.enabled:
            enc = self._encode_images(arrays)
            return enc, self._prefix_cache(enc.image_tokens)
        keys = [image_digest(a) for a in arrays]
        parts: dict[str, _CachedImage | None] = {k: self.image_cache.get(k) for k in dict.fromkeys(keys)}
        todo = [k for k, part in parts.items() if part is None]
        if todo:
            enc = self._encode_images([arrays[keys.index(k)] for k in todo])
            cache = self._prefix_cache(enc.image_tokens)
            for j, k in enumerate(todo):
                part = _CachedImage.take(enc, cache, j)
                self.image_cache.put(k, part, part.nbytes)
                parts[k] = part
            if todo == keys:  # all new and distinct: the batch just encoded is the answer as it is
                return enc, cache
        chosen = [parts[k] for k in keys]
        layers = zip(*(p.prefix for p in chosen), strict=True)  # type: ignore[union-attr]
        cache = DynamicCache(
            ddp_cache_data=[
                (torch.cat([k for k, _ in lay]), torch.cat([v for _, v in lay])) for lay in layers
            ]
        )
        return ImageEncoding.cat([p.encoding for p in chosen]), cache  # type: ignore[union-attr]

    def _chunk_inputs(
        self,
        items: Sequence[_Item],
        regions: tuple[torch.Tensor, torch.Tensor],
        cache: DynamicCache,
        n_images: int,
    ) -> tuple[dict[str, torch.Tensor], DynamicCache]:
        ids, mask = pad_batch(
            [self.suffixes[it.key] for it in items], self.tokenizer.pad_token_id or 0, side="left"
        )
        roi_idx = torch.tensor([it.roi for it in items], device=self.device)
        plen = cache.get_seq_length()
        inputs = self.model.build_inputs(
            ids.to(self.device),
            mask.to(self.device),
            None,
            None,
            (regions[0][roi_idx], regions[1][roi_idx]),
            [1] * len(items),
            padding_side="left",
            position_offset=plen,
        )
        full_mask = torch.cat(
            [torch.ones((len(items), plen), dtype=torch.long, device=self.device), inputs["attention_mask"]],
            1,
        )
        inputs["attention_mask"] = full_mask
        if n_images == 1:
            sub = expand_cache(cache, len(items))
        else:
            img = torch.tensor([it.image for it in items], device=self.device)
            sub = DynamicCache(ddp_cache_data=[(lay.keys[img], lay.values[img]) for lay in cache.layers])
        return inputs, sub

    def _chunks(self, items: list[_Item]) -> list[list[int]]:
        """Item indices in batches of similar suffix length, so left padding wastes little compute."""
        order = sorted(range(len(items)), key=lambda i: (len(self.suffixes[items[i].key]), i))
        return [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]

    @torch.inference_mode()
    def _score(
        self,
        items: list[_Item],
        regions: tuple[torch.Tensor, torch.Tensor],
        cache: DynamicCache,
        n_images: int,
    ) -> dict[int, torch.Tensor]:
        """The last logit row (``[1, vocab]``) of every item's prompt."""
        out: dict[int, torch.Tensor] = {}
        for idx in self._chunks(items):
            inputs, sub = self._chunk_inputs([items[i] for i in idx], regions, cache, n_images)
            logits, _ = self.model.run_lm(
                inputs["inputs_embeds"],
                inputs["attention_mask"],
                inputs["position_ids"],
                sub,
                logits_to_keep=1,
            )
            out.update({i: logits[j, -1:] for j, i in enumerate(idx)})
        return out

    @torch.inference_mode()
    def _score_severity(
        self,
        items: list[_Item],
        regions: tuple[torch.Tensor, torch.Tensor],
        cache: DynamicCache,
        n_images: int,
    ) -> dict[Prompt, dict[int, torch.Tensor]]:
        """For "... ASSISTANT: With": the last two logit rows of the "With" prompt (before and after
        "With") and the last row after "With <severity>" for each severity, per item.

        The "With" suffix runs once; the severity words are fed on top of its cache in one more
        pass (:meth:`_after_severity`).
        """
        out: dict[Prompt, dict[int, torch.Tensor]] = {p: {} for p in (WITH, *AFTER_SEVERITY.values())}
        for idx in self._chunks(items):
            inputs, sub = self._chunk_inputs([items[i] for i in idx], regions, cache, n_images)
            logits, sub = self.model.run_lm(
                inputs["inputs_embeds"],
                inputs["attention_mask"],
                inputs["position_ids"],
                sub,
                logits_to_keep=2,
            )
            # Position -2 predicts the answer's first word ("With" or "No"), -1 the word after "With".
            out[WITH].update({i: logits[j, -2:] for j, i in enumerate(idx)})
            after = self._after_severity(sub, inputs["attention_mask"], inputs["position_ids"][:, -1])
            for sv, rows in after.items():
                out[AFTER_SEVERITY[sv]].update({i: rows[j] for j, i in enumerate(idx)})
        return out

    @torch.inference_mode()
    def _after_severity(
        self, state: DynamicCache, mask: torch.Tensor, last_pos: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The logits after "... With <s>" for every severity word s (``[n, 1, vocab]`` each), from the
        LM state of n "... With" prompts (``mask [n, context]``: their attention mask so far;
        ``last_pos [n]``: the position of "With").

        Every word continues the same state, so the words run as one block of tokens per prompt on
        top of it, all at the positions that follow "With": a 4-D attention mask lets each word's
        tokens see the cached prompt and their own word's earlier tokens, never another word's. The
        state is read by every word, never copied per word: the pass adds the block's tokens to each
        prompt's cache, however many severity words there are. An LM whose attention takes no
        custom mask runs the words one after another on the shared state instead.
        """
        words = list(self.severity_tokens)
        toks = [torch.tensor(self.severity_tokens[w], device=self.device) for w in words]
        n, context = mask.shape
        emb = self.model.get_input_embeddings()
        word = torch.cat([torch.full((len(t),), w, device=self.device) for w, t in enumerate(toks)])
        step = torch.cat([torch.arange(len(t), device=self.device) for t in toks])
        own = (word[:, None] == word[None, :]) & (step[None, :] <= step[:, None])  # [q, q]
        embeds = emb(torch.cat(toks))[None].expand(n, -1, -1)
        attention = self.model.attention_mask_4d(
            torch.cat([mask.bool()[:, None, :].expand(-1, len(word), -1), own.expand(n, -1, -1)], 2),
            embeds.dtype,
        )
        if attention is None:  # one word at a time, each on the shared state (a fresh cache of views)
            out = {}
            for w, t in zip(words, toks, strict=True):
                view = DynamicCache(ddp_cache_data=[(lay.keys, lay.values) for lay in state.layers])
                lg, _ = self.model.run_lm(
                    emb(t)[None].expand(n, -1, -1),
                    torch.cat([mask, mask.new_ones((n, len(t)))], 1),
                    last_pos[:, None] + 1 + torch.arange(len(t), device=self.device),
                    view,
                    logits_to_keep=1,
                )
                out[w] = lg[:, -1:]
            return out
        pos = last_pos[:, None] + 1 + step[None]
        lg, _ = self.model.run_lm(embeds, attention, pos, state, logits_to_keep=len(word))
        ends = torch.cumsum(torch.tensor([len(t) for t in toks]), 0) - 1  # each word's last token
        return {w: lg[:, int(e) : int(e) + 1] for w, e in zip(words, ends, strict=True)}

    @torch.inference_mode()
    def _generate(
        self,
        items: list[_Item],
        regions: tuple[torch.Tensor, torch.Tensor],
        cache: DynamicCache,
        n_images: int,
    ) -> list[str]:
        texts: dict[int, str] = {}
        for idx in self._chunks(items):
            inputs, sub = self._chunk_inputs([items[i] for i in idx], regions, cache, n_images)
            seqs = greedy_generate(
                self.model,
                inputs["inputs_embeds"],
                inputs["attention_mask"],
                inputs["position_ids"],
                sub,
                self.max_new_tokens,
                self.tokenizer.eos_token_id,
            )
            texts.update(
                {
                    i: self.tokenizer.decode(q, skip_special_tokens=True).strip()
                    for i, q in zip(idx, seqs, strict=True)
                }
            )
        return [texts[i] for i in range(len(items))]

    # ------------------------------------------------------------------ public API

    def assess(
        self, image: Any, rois: Sequence[Roi], tasks: Sequence[str] = TASKS, text: bool = False
    ) -> list[RegionPrediction]:
        """Assess every ROI of one image (``image``: anything :func:`seagull.imageio.load_image` takes)."""
        return self.assess_batch([image], [rois], tasks=tasks, text=text)[0]

    def assess_batch(
        self,
        images: Sequence[Any],
        rois_per_image: Sequence[Sequence[Roi]],
        tasks: Sequence[str] = TASKS,
        text: bool = False,
    ) -> list[list[RegionPrediction]]:
        if len(images) != len(rois_per_image):
            raise ModelError(
                f"{len(images)} images but {len(rois_per_image)} ROI lists; give one list per image"
            )
        bad = [t for t in tasks if t not in TASKS]
        if bad:
            raise ModelError(f"unknown task(s) {bad}; choose from {TASKS}")
        arrays = [load_image(im, self.max_pixels) for im in images]
        for i, (arr, rois) in enumerate(zip(arrays, rois_per_image, strict=True)):
            check_image_side(arr, str(images[i]) if isinstance(images[i], (str, Path)) else f"image {i}")
            for r in rois:
                if not isinstance(r, Roi):
                    raise RoiError(f"image {i}: ROIs must be seagull.roi.Roi objects, got {type(r).__name__}")
                r.check_size(arr.shape[0], arr.shape[1])
                check_roi_size(r)
        # (image, ROI index) of every ROI; the ROIs themselves are taken a chunk at a time, so a
        # compact list (RoiList) never holds more than one chunk of full-size masks.
        flat = [(b, k) for b, rois in enumerate(rois_per_image) for k in range(len(rois))]
        out: list[list[RegionPrediction]] = [[] for _ in images]
        if not flat:
            return out
        arrays = [self._working_copy(a) for a in arrays]
        with torch.inference_mode():
            enc, cache = self._encode(arrays)
        # A joint MFE lets the ROIs of one image attend to each other: they must go through it together.
        size = len(flat) if self.model.mask_extractor.joint else self.roi_chunk
        for start in range(0, len(flat), size):
            part = flat[start : start + size]
            rois = [rois_per_image[b][k] for b, k in part]
            for (b, _), res in zip(
                part, self._assess_chunk(enc, cache, arrays, part, rois, tasks, text), strict=True
            ):
                out[b].append(res)
        return out

    def _working_copy(self, image: np.ndarray) -> np.ndarray:
        """``image`` shrunk so its longer side is at most ``max_side`` (the same array when it fits, or
        when shrinking would take its shorter side under the smallest side the model judges)."""
        h, w = image.shape[:2]
        if self.max_side is None or max(h, w) <= self.max_side:
            return image
        if min(h, w) * self.max_side / max(h, w) < MIN_IMAGE_SIDE:
            return image
        return fit_longest_side(image, self.max_side)

    def _assess_chunk(
        self,
        enc: ImageEncoding,
        cache: DynamicCache,
        arrays: list[np.ndarray],
        part: list[tuple[int, int]],
        rois: list[Roi],
        tasks: Sequence[str],
        text: bool,
    ) -> list[RegionPrediction]:
        """The predictions of one chunk of ROIs (``part``: their (image, index) pairs, image-major)."""
        # ``distortions`` stays [] when that task is not asked (the JSON has always said so).
        results = [
            RegionPrediction(name=r.name, bbox=tuple(int(v) for v in r.bbox), area=r.area, distortions=[])
            for r in rois  # type: ignore[arg-type]
        ]
        shown = list(dict.fromkeys(b for b, _ in part))  # the images this chunk has ROIs of, in order
        with torch.inference_mode():
            sub = enc if len(shown) == len(arrays) else ImageEncoding.cat([enc.select(b) for b in shown])
            masks = [
                np.stack(
                    [
                        _working_mask(r.mask, arrays[i].shape[:2])
                        for (b, _), r in zip(part, rois, strict=True)
                        if b == i
                    ]
                )
                for i in shown
            ]
            regions = self.model.encode_regions(sub, self.processor.masks(masks))
        keys = [p for p, task in ((QUALITY, "quality"), (IMPORTANCE, "importance")) if task in tasks]
        items = [_Item(j, b, key) for j, (b, _) in enumerate(part) for key in keys]
        # The logits at the end of each scoring prompt, per prompt and ROI.
        ends: dict[Prompt, dict[int, torch.Tensor]] = {key: {} for key in keys}
        for i, row in self._score(items, regions, cache, len(arrays)).items():
            ends[items[i].key][items[i].roi] = row
        if "distortion" in tasks:
            with_items = [_Item(j, b, WITH) for j, (b, _) in enumerate(part)]
            for key, rows in self._score_severity(with_items, regions, cache, len(arrays)).items():
                ends[key] = {with_items[i].roi: row for i, row in rows.items()}
        stacked = {key: torch.stack([rows[j] for j in range(len(part))]) for key, rows in ends.items()}
        self._fill(results, self.scorer.rows(stacked) if stacked else [RoiLogits() for _ in part])
        if text:
            gen_items = [_Item(j, b, GENERATION[t]) for j, (b, _) in enumerate(part) for t in tasks]
            for it, answer in zip(
                gen_items, self._generate(gen_items, regions, cache, len(arrays)), strict=True
            ):
                res, task = results[it.roi], it.key.task
                res.answers[task] = answer
                res.parsed[task] = parse_answer(task, answer)  # AnswerParseError if off-template
        return results

    def _fill(self, results: list[RegionPrediction], rows: list[RoiLogits]) -> None:
        """Turn each ROI's logit rows into its scores."""
        for res, row in zip(results, rows, strict=True):
            scores = self.scorer.score(row)
            if scores.quality is not None:
                q = scores.quality
                res.quality, res.quality_level, res.quality_probs = q.score, q.level, q.probs
            if scores.importance is not None:
                i = scores.importance
                res.importance, res.importance_level, res.importance_probs = i.score, i.level, i.probs
            res.distortions.extend(scores.distortions)
