"""Deterministic per-item seeds and the split of records by source photo.

Records are split by source photo, so a test photo is never seen in training (any folder, any tool):
every synthetic, authentic and human-rated folder draws its splits with :func:`assign_split`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SPLITS = ("train", "val", "test")


def item_seed(seed: int, *keys: object) -> int:
    """A 32-bit seed from ``seed`` and ``keys`` (stable across runs, machines and Python versions)."""
    h = hashlib.sha256("|".join(map(str, (seed, *keys))).encode()).digest()
    return int.from_bytes(h[:4], "little")


def assign_split(ref_id: str, fractions: Sequence[float], seed: int) -> str:
    """The split of source photo ``ref_id`` for ``fractions`` (train, val, test) and ``seed``."""
    u = item_seed(seed, "split", ref_id) / 2**32
    acc = 0.0
    for name, f in zip(SPLITS, fractions, strict=True):
        acc += f
        if u < acc:
            return name
    return SPLITS[-1]
