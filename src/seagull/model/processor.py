"""The model's input side: image -> tensors, masks -> tensors, prompts from the templates -> token ids.

:class:`SeagullProcessor` is what transformers calls a processor (LLaVA's ``processing_llava.py``):
the image preprocessing (normalisation, resize to the tower's input size), the ROI masks, the
prompts of :mod:`seagull.templates` and the tokenizer, in one object saved beside the model
(``processor_config.json`` and the tokenizer files next to ``config.json``). A folder without
``processor_config.json`` (the shipped model, the released SEAGULL-7B files) gets the processor its
model config and tokenizer describe, so older folders load unchanged.

It also takes every answer word's id *in context* (:class:`AnswerIds`): the token that follows the
real prompt when the word is appended to it. (A word tokenised alone can start with another token:
SentencePiece turns the space of " good" into a piece of its own.) Turning the logits read at those
ids into scores is the output side's business, :mod:`seagull.model.scoring`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import templates as T
from ..errors import ConfigError, ModelError, RoiError
from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS, TASKS
from .config import MODEL_TYPE, get_config, read_config_json
from .prompting import EncodedConversation, encode_conversation, tokenize_prompt

PROCESSOR_CONFIG_NAME = "processor_config.json"
PROCESSOR_FORMAT = 1
RESIZE_MODES = ("stretch_bilinear_antialias",)  # the whole image stretched to size x size


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """A prompt about one ROI: the question of ``task`` and the start of its answer ("": none, the
    model writes the answer). The scoring prompts end where an answer word is read."""

    task: str
    answer: str = ""

    def text(self) -> str:
        """The rendered conversation up to the answer start (one ROI, ``<image>`` unexpanded)."""
        ask = T.render_prompt([T.Turn("human", T.region_question(self.task))])
        return f"{ask} {self.answer}" if self.answer else ask


# The prompts whose next-token logits are scored: after the quality / importance answer prefix,
# after "With" (the row before it reads the distortion answer's first word) and after
# "With <severity>" for each severity word; and the generation prompts (no answer started).
QUALITY = Prompt("quality", T.ANSWER_PREFIX["quality"])
IMPORTANCE = Prompt("importance", T.ANSWER_PREFIX["importance"])
WITH = Prompt("distortion", "With")
AFTER_SEVERITY: dict[str, Prompt] = {s: Prompt("distortion", f"With {s}") for s in SEVERITY_LEVELS}
SCORING_PROMPTS: tuple[Prompt, ...] = (QUALITY, IMPORTANCE, WITH, *AFTER_SEVERITY.values())
GENERATION: dict[str, Prompt] = {t: Prompt(t) for t in TASKS}


def next_word_ids(tokenizer: Any, image_token_id: int, text: str, words: Sequence[str]) -> list[int]:
    """For each word, the token that follows ``text`` in ``text + " " + word`` (distinct, or ModelError)."""
    base = tokenize_prompt(tokenizer, text, image_token_id)
    out = []
    for w in words:
        full = tokenize_prompt(tokenizer, f"{text} {w}", image_token_id)
        if full[: len(base)] != base or len(full) == len(base):
            raise ModelError(
                f"tokenizer merges {w!r} with the prompt before it; it cannot be scored as a next token"
            )
        out.append(full[len(base)])
    if len(set(out)) != len(out):
        raise ModelError(
            f"words {list(words)} share first tokens {out} in this tokenizer; their scores would be equal"
        )
    return out


@dataclass
class AnswerIds:
    """The token ids the scorer reads, each taken in context (see :func:`next_word_ids`)."""

    quality_ids: list[int]  # the quality words after "The quality is"
    importance_ids: list[int]  # the importance words after "This region is"
    with_id: int  # the distortion answer's first word: "With <severity> <type> ..."
    clean_id: int  # ... or "No obvious distortion."
    severity_ids: list[int]  # the severity words after "With"
    type_ids: dict[str, list[int]]  # per severity word s: the type words after "With s"

    @classmethod
    def read(cls, tokenizer: Any, image_token_id: int) -> AnswerIds:
        def ids(prompt: Prompt, words: Sequence[str]) -> list[int]:
            return next_word_ids(tokenizer, image_token_id, prompt.text(), words)

        with_id, clean_id = ids(GENERATION["distortion"], ["With", "No"])
        return cls(
            quality_ids=ids(QUALITY, QUALITY_LEVELS),
            importance_ids=ids(IMPORTANCE, IMPORTANCE_LEVELS),
            with_id=with_id,
            clean_id=clean_id,
            severity_ids=ids(WITH, SEVERITY_LEVELS),
            type_ids={s: ids(AFTER_SEVERITY[s], DISTORTION_TYPES) for s in SEVERITY_LEVELS},
        )


# --------------------------------------------------------------------------- images and masks


@dataclass(frozen=True)
class ImageConfig:
    """How an image becomes the tower's input: scaled to [0, 1], normalised with ``mean``/``std`` at its
    native size (the MFE reads that copy), and stretched to ``size`` x ``size`` for the tower."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = RESIZE_MODES[0]

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(
                f"image resize {self.resize!r} is not supported; expected one of {RESIZE_MODES}"
            )
        if int(self.size) < 1 or len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(
                f"image config needs a positive size and three means and positive stds, got {self}"
            )

    @classmethod
    def of_model(cls, config: Any) -> ImageConfig:
        """The preprocessing a model config's vision tower expects."""
        v = config.vision
        return cls(int(v["image_size"]), tuple(map(float, v["mean"])), tuple(map(float, v["std"])))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "resize": self.resize}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageConfig:
        try:
            return cls(
                int(d["size"]),
                tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
                tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
                str(d.get("resize", RESIZE_MODES[0])),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"image section {d!r} needs size, mean and std ({e})") from e


@dataclass
class ImageInputs:
    """A batch of preprocessed images: the normalised native copies and the tower's input."""

    native: list[torch.Tensor]  # normalised [3, H_i, W_i]
    pixel_values: torch.Tensor  # [B, 3, size, size]


def to_image_tensor(image: Any) -> torch.Tensor:
    """HxWx3 uint8 array / [3, H, W] tensor (uint8 or float in [0, 1]) -> float [3, H, W] in [0, 1]."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ModelError(
                f"image array must be HxWx3 RGB, got shape {image.shape}; load it with seagull.imageio"
            )
        arr = np.ascontiguousarray(image)
        if not arr.flags.writeable:  # e.g. from np.asarray(PIL image); torch wants writable memory
            arr = arr.copy()
        t = torch.from_numpy(arr).permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ModelError(f"image tensor must be [3, H, W], got {tuple(image.shape)}")
        t = image
    else:
        raise ModelError(f"image must be a numpy array or torch tensor, got {type(image).__name__}")
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def to_mask_tensor(masks: Any) -> torch.Tensor:
    """``[R, H, W]`` (or a list of HxW) bool masks -> bool tensor."""
    if isinstance(masks, (list, tuple)):
        masks = (
            np.stack([np.asarray(m, dtype=bool) for m in masks]) if len(masks) else np.zeros((0, 1, 1), bool)
        )
    t = torch.as_tensor(np.asarray(masks) if not isinstance(masks, torch.Tensor) else masks)
    if t.ndim != 3:
        raise RoiError(f"masks must be [R, H, W], got shape {tuple(t.shape)}")
    return t.bool()


def normalize_image(image: Any, config: ImageConfig, device: str | torch.device = "cpu") -> torch.Tensor:
    """One image -> float ``[3, H, W]`` on ``device``, normalised with the config's mean and std."""
    x = to_image_tensor(image).to(device)
    mean = torch.tensor(config.mean, dtype=x.dtype, device=device).view(3, 1, 1)
    std = torch.tensor(config.std, dtype=x.dtype, device=device).view(3, 1, 1)
    return (x - mean) / std


def preprocess_images(
    images: Sequence[Any], config: ImageConfig, device: str | torch.device = "cpu"
) -> ImageInputs:
    """Images (any size) -> :class:`ImageInputs` on ``device`` (see :class:`ImageConfig`)."""
    native = [normalize_image(im, config, device) for im in images]
    s = config.size
    # The released preprocessing: the whole image stretched to size x size.
    pixels = torch.cat([F.interpolate(n[None], size=(s, s), mode="bilinear", antialias=True) for n in native])
    return ImageInputs(native, pixels)


# --------------------------------------------------------------------------- the processor


class SeagullProcessor:
    """``SeagullProcessor(tokenizer, image_config, image_token_id)``; usually
    :meth:`from_pretrained` (a model folder) or :meth:`from_model` (a model object and its tokenizer).

    - :meth:`images` / :meth:`masks`: model inputs from images and ROI masks;
    - :attr:`prompts`: token ids (with BOS) of every :data:`SCORING_PROMPTS` and :data:`GENERATION`
      prompt; :attr:`answer_ids`: the answer words' ids in context; :attr:`severity_tokens`: the
      tokens each severity word adds after "... With" (computed when first read: a tokenizer that
      cannot score is a ModelError then);
    - :meth:`encode_conversation`: a training conversation -> ids and labels;
    - :meth:`save_pretrained`: ``processor_config.json`` and the tokenizer files.
    """

    def __init__(self, tokenizer: Any, image_config: ImageConfig, image_token_id: int) -> None:
        self.tokenizer = tokenizer
        self.image_config = image_config
        self.image_token_id = int(image_token_id)

    @cached_property
    def prompts(self) -> dict[Prompt, list[int]]:
        return {
            p: tokenize_prompt(self.tokenizer, p.text(), self.image_token_id)
            for p in (*SCORING_PROMPTS, *GENERATION.values())
        }

    @cached_property
    def answer_ids(self) -> AnswerIds:
        return AnswerIds.read(self.tokenizer, self.image_token_id)

    @cached_property
    def severity_tokens(self) -> dict[str, list[int]]:
        with_ids = self.prompts[WITH]
        if with_ids != self.prompts[GENERATION["distortion"]] + [self.answer_ids.with_id]:
            raise ModelError("'With' is not one token after the distortion prompt; its row cannot be read")
        out: dict[str, list[int]] = {}
        for s, prompt in AFTER_SEVERITY.items():
            full = self.prompts[prompt]
            if full[: len(with_ids)] != with_ids:
                raise ModelError(f"severity word {s!r} changes the tokens of the prompt before it")
            out[s] = full[len(with_ids) :]
        return out

    # ------------------------------------------------------------------ building

    @classmethod
    def from_model(cls, model_or_config: Any, tokenizer: Any) -> SeagullProcessor:
        """The processor a model (or its :class:`SeagullConfig`) and tokenizer describe."""
        config = getattr(model_or_config, "config", model_or_config)
        if config.image_token_id is None:
            raise ModelError("the model config has no image_token_id; build the model with its tokenizer")
        return cls(tokenizer, ImageConfig.of_model(config), int(config.image_token_id))

    @classmethod
    def from_pretrained(cls, folder: str | Path, tokenizer: Any = None) -> SeagullProcessor:
        """The processor saved in a model folder; without ``processor_config.json``, the one its
        ``config.json`` (a SEAGULL config, or the released SEAGULL-7B's LLaVA config) and tokenizer
        describe. ``tokenizer``: an object or folder instead of the folder's own tokenizer files."""
        from .tokenizer import load_tokenizer

        p = Path(folder)
        if tokenizer is None or isinstance(tokenizer, (str, Path)):
            tokenizer = load_tokenizer(p if tokenizer is None else tokenizer)
        saved = p / PROCESSOR_CONFIG_NAME
        if saved.is_file():
            try:
                d = read_config_json(saved)
                if d.get("processor_class") != cls.__name__:
                    raise ConfigError(f"{saved} is not a {cls.__name__} config")
                return cls(tokenizer, ImageConfig.from_dict(d["image"]), int(d["image_token_id"]))
            except (ConfigError, KeyError, TypeError, ValueError) as e:
                raise ModelError(f"{saved} cannot be read ({e}); copy the model folder again") from e
        return cls.from_model(folder_config(p), tokenizer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "processor_class": type(self).__name__,
            "format": PROCESSOR_FORMAT,
            "image": self.image_config.to_dict(),
            "image_token_id": self.image_token_id,
        }

    def save_pretrained(self, folder: str | Path) -> None:
        """``processor_config.json`` and the tokenizer files in ``folder`` (beside the model's config.json)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(out))
        (out / PROCESSOR_CONFIG_NAME).write_text(
            json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8"
        )

    def check_model(self, model: Any) -> None:
        """ModelError unless the model reads what this processor writes: the same special-token ids
        and the image preprocessing its tower (and the MFE, which undoes the normalisation) expects."""
        cfg = model.config
        if int(cfg.image_token_id) != self.image_token_id:
            raise ModelError(
                f"the processor puts <image> at id {self.image_token_id} but the model expects "
                f"{cfg.image_token_id}; use the processor saved with the model"
            )
        want = ImageConfig.of_model(cfg)
        if want != self.image_config:
            raise ModelError(
                f"the processor prepares images as {self.image_config.to_dict()} but the model's tower expects "
                f"{want.to_dict()}; use the processor saved with the model"
            )
        for name in ("global_token_id", "local_token_id"):
            token = T.GLOBAL_TOKEN if name.startswith("global") else T.LOCAL_TOKEN
            if self.tokenizer.convert_tokens_to_ids(token) != getattr(cfg, name):
                raise ModelError(
                    f"the tokenizer maps {token} to {self.tokenizer.convert_tokens_to_ids(token)} but the "
                    f"model expects {getattr(cfg, name)}; use the tokenizer saved with the model"
                )

    # ------------------------------------------------------------------ inputs

    def images(self, images: Sequence[Any], device: str | torch.device = "cpu") -> ImageInputs:
        """Images (HxWx3 uint8 arrays or [3, H, W] tensors, any size) -> :class:`ImageInputs`."""
        return preprocess_images(images, self.image_config, device)

    def masks(self, masks: Sequence[Any]) -> list[torch.Tensor]:
        """One ``[R_i, H_i, W_i]`` mask stack (array, tensor or list of HxW) per image -> bool tensors."""
        return [to_mask_tensor(m) for m in masks]

    def encode_conversation(
        self, conv: Mapping[str, Any] | Sequence[Mapping[str, Any]], max_length: int | None = None
    ) -> EncodedConversation:
        """A conversation (``{"rois": [...], "turns": [...]}``) -> ids and answer labels."""
        return encode_conversation(self.tokenizer, conv, self.image_token_id, max_length)


def folder_config(folder: Path) -> Any:
    """The SEAGULL config of a model folder: its own config.json, or for the released SEAGULL-7B
    folder (a LLaVA config.json) the ``seagull-7b`` configuration it is loaded with."""
    cj = folder / "config.json"
    if not cj.is_file():
        raise ModelError(f"{folder} holds no config.json; pass a model folder")
    try:
        raw = read_config_json(cj)
        if raw.get("model_type") == MODEL_TYPE:
            return get_config(folder)
    except ConfigError as e:
        raise ModelError(str(e)) from e
    return get_config("seagull-7b")
