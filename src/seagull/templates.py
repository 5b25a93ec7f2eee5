"""Instruction and answer templates, SEAGULL-compatible, the Vicuna-v1 conversation format, and the
one generator of conversations from labels (stored by synthesis, drawn by training).

The preamble and the three questions are the released inference prompts verbatim (odd spacing
included) so the released SEAGULL-7B sees what it was trained on. Answers follow the authors'
development templates. Parsing is strict: an answer that does not follow a template raises
:class:`AnswerParseError` instead of guessing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import AnswerParseError, ConfigError, RoiError
from .labels import DISTORTION_TYPES, IMPORTANCE_LEVELS, QUALITY_LEVELS, SEVERITY_LEVELS, TASKS
from .records import ALL_LABEL_TASKS, RoiRecord

IMAGE_TOKEN = "<image>"
GLOBAL_TOKEN = "<global>"
LOCAL_TOKEN = "<local>"
REGION_TOKENS = GLOBAL_TOKEN + LOCAL_TOKEN

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
ROLES = ("USER", "ASSISTANT")
SEP, SEP2 = " ", "</s>"

PREAMBLE = (
    "<image>\nThis provides an overview of the image.\n Please answer the following questions about the "
    "provided region. Note: Distortions include: blur, colorfulness, compression, contrast exposure and "
    "noise.\n Here is the region <global><local>. "
)

QUESTIONS = {
    "quality": "Analyze the quality of this region.",
    "importance": (
        "Consider the impact of this region on the overall image quality. "
        "Analyze its importance to the overall image quality."
    ),
    "distortion": "Provide the distortion type of this region.",
}

# Fixed answer prefixes after which the level word is read from the next-token logits (Q-Align).
ANSWER_PREFIX = {"quality": "The quality is", "importance": "This region is"}
NO_DISTORTION = "No obvious distortion."


def answer_quality(level: str) -> str:
    return f"{ANSWER_PREFIX['quality']} {level}."


def answer_importance(level: str) -> str:
    return f"{ANSWER_PREFIX['importance']} {level} to the overall quality."


def answer_distortion(items: Sequence[tuple[str, str]]) -> str:
    """``[(type, severity_level), ...]`` -> "With mild blur and moderate noise distortions."."""
    if not items:
        return NO_DISTORTION
    parts = [f"{sev} {typ}" for typ, sev in items]
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"With {joined} distortion{'s' if len(parts) > 1 else ''}."


# ---------------------------------------------------------------- judgment (yes/no) templates


def judgment_type_question(dist_type: str) -> str:
    return f"Is this region in {dist_type} distortion?"


def judgment_type_answer(asked: str, present: Sequence[str]) -> str:
    if asked in present:
        return "Yes."
    if not present:
        return f"No. {NO_DISTORTION}"
    return f"No. The region is in {' and '.join(present)} distortion."


def judgment_quality_question(level: str) -> str:
    return f"Is the quality of this region {level}?"


def judgment_quality_answer(asked: str, truth: str) -> str:
    return "Yes." if asked == truth else f"No. {answer_quality(truth)}"


def judgment_importance_question(level: str) -> str:
    return f"{QUESTIONS['importance'].split('. ')[0]}. Is this region {level} to the overall image quality?"


def judgment_importance_answer(asked: str, truth: str) -> str:
    return "Yes." if asked == truth else f"No. {answer_importance(truth)}"


# ---------------------------------------------------------------- parsing


def _first_word_after(text: str, prefix: str, words: Sequence[str], what: str) -> str:
    m = re.search(re.escape(prefix) + r"\s+([A-Za-z]+)", text)
    if not m or m.group(1).lower() not in words:
        raise AnswerParseError(f"{what} answer {text!r} does not contain '{prefix} <{'|'.join(words)}>'")
    return m.group(1).lower()


def parse_quality(text: str) -> str:
    return _first_word_after(text, ANSWER_PREFIX["quality"], QUALITY_LEVELS, "quality")


def parse_importance(text: str) -> str:
    return _first_word_after(text, ANSWER_PREFIX["importance"], IMPORTANCE_LEVELS, "importance")


_DIST_ITEM = re.compile(r"(" + "|".join(SEVERITY_LEVELS) + r")\s+(" + "|".join(DISTORTION_TYPES) + r")")


def parse_distortion(text: str) -> list[tuple[str, str]]:
    """Inverse of :func:`answer_distortion`: ``[(type, severity_level), ...]``."""
    t = text.strip()
    if t.startswith(NO_DISTORTION.rstrip(".")):
        return []
    if not t.startswith("With "):
        raise AnswerParseError(
            f"distortion answer {text!r} starts neither with 'With ' nor '{NO_DISTORTION}'"
        )
    items = [(typ, sev) for sev, typ in _DIST_ITEM.findall(t)]
    if not items:
        raise AnswerParseError(f"distortion answer {text!r} names no '<severity> <type>' pair")
    return items


# ---------------------------------------------------------------- conversations


@dataclass(frozen=True)
class Turn:
    role: str  # "human" or "gpt"
    text: str


def region_question(task: str) -> str:
    """The first human message for one region and one task, as the released inference sends it."""
    return PREAMBLE + QUESTIONS[task]


def multi_region_preamble(n_regions: int) -> str:
    """Preamble naming several regions, each with its own ``<global><local>`` pair (in order)."""
    if n_regions == 1:
        return PREAMBLE
    regions = ", ".join(f"Region {i + 1} {REGION_TOKENS}" for i in range(n_regions))
    return (
        "<image>\nThis provides an overview of the image.\n Please answer the following questions about the "
        "provided regions. Note: Distortions include: blur, colorfulness, compression, contrast exposure and "
        f"noise.\n Here are the regions: {regions}. "
    )


def render_prompt(turns: Sequence[Turn], add_generation_prompt: bool = True) -> str:
    """Vicuna-v1 rendering: ``SYSTEM USER: q ASSISTANT: a</s>USER: ...``.

    With ``add_generation_prompt`` and a final human turn, the text ends with ``ASSISTANT:`` so the
    model continues with its answer.
    """
    out = SYSTEM + SEP
    for t in turns:
        if t.role == "human":
            out += f"{ROLES[0]}: {t.text}{SEP}"
        elif t.role == "gpt":
            out += f"{ROLES[1]}: {t.text}{SEP2}"
        else:
            raise ValueError(f"turn role must be 'human' or 'gpt', got {t.role!r}")
    if add_generation_prompt and turns and turns[-1].role == "human":
        out += f"{ROLES[1]}:"
    return out


def count_regions(text: str) -> int:
    n_global, n_local = text.count(GLOBAL_TOKEN), text.count(LOCAL_TOKEN)
    if n_global != n_local:
        raise RoiError(f"prompt has {n_global} {GLOBAL_TOKEN} but {n_local} {LOCAL_TOKEN} tokens")
    return n_global


# ---------------------------------------------------------------- conversations from labels

ROI_TASKS = TASKS  # the per-ROI questions; a conversation may add "judgment" (which of two ROIs)
JUDGMENT_KINDS = ("type", "quality", "importance")


# the label task each yes/no kind needs (a folder's card says which it labels: records.card_label_tasks)
_JUDGMENT_NEEDS = {"type": "distortion", "quality": "quality", "importance": "importance"}


def judgment_kinds(roi: RoiRecord, labelled: Collection[str] = ALL_LABEL_TASKS) -> list[str]:
    """The yes/no question kinds a ROI's labels can answer (importance needs an importance level;
    ``labelled``: the tasks its folder labels, so a folder without distortion labels is not asked "type")."""
    return [
        k
        for k in JUDGMENT_KINDS
        if _JUDGMENT_NEEDS[k] in labelled and (k != "importance" or roi.importance_level)
    ]


def judgment_turn(kind: str, roi: RoiRecord, rng: random.Random) -> tuple[str, str]:
    """A yes/no question of one kind, asked about the true label half of the time, and its answer."""
    if kind == "type":
        present = [d.type for d in roi.distortions]
        asked = rng.choice(present) if present and rng.random() < 0.5 else rng.choice(DISTORTION_TYPES)
        return judgment_type_question(asked), judgment_type_answer(asked, present)
    if kind == "quality":
        asked = roi.quality_level if rng.random() < 0.5 else rng.choice(QUALITY_LEVELS)
        return judgment_quality_question(asked), judgment_quality_answer(asked, roi.quality_level or "")
    asked = roi.importance_level if rng.random() < 0.5 else rng.choice(IMPORTANCE_LEVELS)
    return judgment_importance_question(asked), judgment_importance_answer(asked, roi.importance_level or "")


def task_turn(
    task: str, roi: RoiRecord, rng: random.Random, labelled: Collection[str] = ALL_LABEL_TASKS
) -> tuple[str, str]:
    """(question, answer) about one labelled ROI; "judgment" draws its kind (among those ``labelled``
    can answer) and question from ``rng``."""
    if task == "quality":
        return QUESTIONS["quality"], answer_quality(roi.quality_level or "")
    if task == "importance":
        return QUESTIONS["importance"], answer_importance(roi.importance_level or "")
    if task == "distortion":
        return QUESTIONS["distortion"], answer_distortion(
            [(d.type, d.severity_level) for d in roi.distortions]
        )
    if task == "judgment":
        return judgment_turn(rng.choice(judgment_kinds(roi, labelled)), roi, rng)
    raise ConfigError(f"unknown task {task!r}; expected one of {(*ROI_TASKS, 'judgment')}")


def conversation(rois: list[int], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``{"rois": [...], "turns": [...]}``; the first question carries the preamble naming the ROIs."""
    turns = []
    for k, (q, a) in enumerate(pairs):
        first = multi_region_preamble(len(rois)) + q if k == 0 else q
        turns += [{"from": "human", "value": first}, {"from": "gpt", "value": a}]
    return {"rois": rois, "turns": turns}


def label_conversations(rois: Sequence[RoiRecord], seed: int) -> list[dict[str, Any]]:
    """The conversations stored with a labelled image. Per ROI: the three SEAGULL questions (shuffled)
    then one yes/no question per kind; with two or more ROIs, one conversation asking a question
    about each of up to three regions."""
    rng = random.Random(seed)
    convs = []
    for i, roi in enumerate(rois):
        pairs = [task_turn(t, roi, rng) for t in ROI_TASKS]
        rng.shuffle(pairs)
        pairs += [judgment_turn(k, roi, rng) for k in judgment_kinds(roi)]
        convs.append(conversation([i], pairs))
    if len(rois) >= 2:
        picked = rng.sample(range(len(rois)), k=min(3, len(rois)))
        pairs = []
        for k, i in enumerate(picked):
            q, a = task_turn(rng.choice(ROI_TASKS), rois[i], rng)
            pairs.append((f"For Region {k + 1}: {q}", a))
        convs.append(conversation(picked, pairs))
    return convs


def usable_tasks(
    roi: RoiRecord, mix: Mapping[str, float], labelled: Collection[str] = ALL_LABEL_TASKS
) -> list[str]:
    """The tasks of ``mix`` (positive weight) that ``roi`` can be asked about: its folder labels them
    (``labelled``; "judgment" needs one yes/no kind), and importance only with an importance level."""

    def answerable(task: str) -> bool:
        if task == "judgment":
            return bool(judgment_kinds(roi, labelled))
        return task in labelled and (task != "importance" or bool(roi.importance_level))

    return [t for t, w in mix.items() if w > 0 and answerable(t)]


def drawn_conversation(
    roi_index: int,
    roi: RoiRecord,
    mix: Mapping[str, float],
    turns: int,
    rng: random.Random,
    labelled: Collection[str] = ALL_LABEL_TASKS,
) -> dict[str, Any]:
    """One conversation about one ROI whose ``turns`` questions are drawn by the task weights ``mix``
    among its :func:`usable_tasks` (a human-rated photo labelled for quality only is never taught
    "No obvious distortion.")."""
    usable = usable_tasks(roi, mix, labelled)
    if not usable:
        raise ConfigError(
            f"no task of the mix {dict(mix)} can be asked about ROI {roi.id!r}: its folder labels "
            f"{sorted(labelled)}; add one of them to data.task_mix"
        )
    weights = [float(mix[t]) for t in usable]
    pairs = [
        task_turn(rng.choices(usable, weights=weights, k=1)[0], roi, rng, labelled) for _ in range(turns)
    ]
    return conversation([roi_index], pairs)
