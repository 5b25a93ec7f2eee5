"""The project's byte-level BPE tokenizer for small models, trained on instruction text.

Special tokens: ``<pad> <s> </s> <unk> <image> <global> <local>``. Every level word, distortion type,
severity word and ``Yes``/``No`` is one token when preceded by a space (as in every answer), so the
level-logit scores read a single position.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .. import templates as T
from ..errors import ConfigError, ModelError
from ..labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS
from .config import read_config_json

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, T.IMAGE_TOKEN, T.GLOBAL_TOKEN, T.LOCAL_TOKEN]
ANSWER_WORDS: tuple[str, ...] = (
    *QUALITY_LEVELS,
    *IMPORTANCE_LEVELS,
    *SEVERITY_LEVELS,
    *DISTORTION_TYPES,
    "Yes",
    "No",
)


def template_corpus() -> list[str]:
    """Every question and answer form of :mod:`seagull.templates`, rendered as Vicuna-v1 text."""
    texts: list[str] = []
    pairs: list[tuple[str, str]] = []
    pairs += [(T.QUESTIONS["quality"], T.answer_quality(q)) for q in QUALITY_LEVELS]
    pairs += [(T.QUESTIONS["importance"], T.answer_importance(i)) for i in IMPORTANCE_LEVELS]
    singles = [[(t, s)] for t in DISTORTION_TYPES for s in SEVERITY_LEVELS]
    doubles = [
        [(a, s), (b, s2)]
        for a, b in itertools.combinations(DISTORTION_TYPES, 2)
        for s, s2 in zip(SEVERITY_LEVELS, SEVERITY_LEVELS[::-1], strict=True)
    ]
    pairs += [(T.QUESTIONS["distortion"], T.answer_distortion(items)) for items in [[], *singles, *doubles]]
    for t in DISTORTION_TYPES:
        pairs.append((T.judgment_type_question(t), T.judgment_type_answer(t, [t])))
        for other in DISTORTION_TYPES:
            pairs.append((T.judgment_type_question(t), T.judgment_type_answer(t, [other])))
        pairs.append((T.judgment_type_question(t), T.judgment_type_answer(t, [])))
    for a, b in itertools.product(QUALITY_LEVELS, repeat=2):
        pairs.append((T.judgment_quality_question(a), T.judgment_quality_answer(a, b)))
    for a, b in itertools.product(IMPORTANCE_LEVELS, repeat=2):
        pairs.append((T.judgment_importance_question(a), T.judgment_importance_answer(a, b)))
    for n in (1, 2, 3):
        for q, a in pairs:
            turns = [T.Turn("human", T.multi_region_preamble(n) + q), T.Turn("gpt", a)]
            texts.append(T.render_prompt(turns, add_generation_prompt=False))
    return texts


def train_sentencepiece(vocab_size: int, control_symbols: Sequence[str] = ()) -> bytes:
    """A LLaMA-kind SentencePiece BPE model (identity normaliser, spaces kept, byte fallback,
    ``<unk> <s> </s>`` at 0, 1, 2) learned from :func:`template_corpus`; returns the model's bytes.
    For tests and benchmarks of the released (SentencePiece) tokenizer path; needs ``sentencepiece``."""
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(template_corpus()),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="bpe",
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        control_symbols=list(control_symbols),
        minloglevel=2,
    )
    return buf.getvalue()


def train_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train the BPE on ``texts`` (default: :func:`template_corpus`) plus the answer words.

    The answer words are fed many times with their leading space so that BPE merges each of them
    into one token; the result is checked and a too-small vocabulary is an error.
    """
    corpus = list(texts) if texts is not None else template_corpus()
    corpus += [" ".join(f" {w}" for w in ANSWER_WORDS)] * 200
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[T.IMAGE_TOKEN, T.GLOBAL_TOKEN, T.LOCAL_TOKEN],
    )
    fast.padding_side = "right"
    check_answer_words(fast)
    return fast


def check_answer_words(tokenizer: PreTrainedTokenizerFast) -> None:
    """Raise ModelError unless every answer word with a leading space is exactly one token."""
    split = {w: tokenizer.tokenize(" " + w) for w in ANSWER_WORDS}
    bad = {w: p for w, p in split.items() if len(p) != 1}
    if bad:
        raise ModelError(f"tokenizer splits answer words {bad}; train it with a larger vocab_size")


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    from transformers import AutoTokenizer

    p = Path(path)
    if not (p / "tokenizer.json").is_file() and not (p / "tokenizer.model").is_file():
        raise ModelError(
            f"{p} holds no tokenizer (tokenizer.json or tokenizer.model); pass the model or tokenizer folder"
        )
    if (p / "config.json").is_file():  # AutoTokenizer reads the model's config.json too
        try:
            read_config_json(p / "config.json")
        except ConfigError as e:
            raise ModelError(str(e)) from e
    try:
        return AutoTokenizer.from_pretrained(str(p))
    except Exception as e:  # noqa: BLE001 - transformers and tokenizers raise many types for bad files
        files = ", ".join(f.name for f in sorted(p.glob("tokenizer*")) if f.is_file())
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(
            f"the tokenizer in {p} ({files}) does not load ({reason}); the files are damaged or of another "
            "kind: copy them again from the model folder they were saved with"
        ) from e
