"""The image utilities every part shares (seagull.imageio): one resize rule, one mask resize, one seeded RNG."""

from __future__ import annotations

import numpy as np

from seagull.imageio import fit_longest_side, resize_mask, seeded_rng


def test_fit_longest_side_shrinks_keeps_and_never_rounds_a_side_to_zero():
    img = np.zeros((400, 600, 3), np.uint8)
    assert fit_longest_side(img, 300).shape == (200, 300, 3)
    assert fit_longest_side(img, 600) is img
    assert fit_longest_side(img, None) is img and fit_longest_side(img, 0) is img
    assert fit_longest_side(np.zeros((2, 20000, 3), np.uint8), 512).shape == (1, 512, 3)


def test_resize_mask_is_nearest_and_boolean():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    big = resize_mask(mask, (8, 8))
    assert big.dtype == bool and big.shape == (8, 8)
    assert big[:4, :4].all() and not big[4:, :].any()
    assert resize_mask(mask, (4, 4)) is mask


def test_seeded_rng_depends_on_every_part_only():
    a = seeded_rng("regions", "x", 3).integers(0, 2**31, 4)
    assert np.array_equal(a, seeded_rng("regions", "x", 3).integers(0, 2**31, 4))
    assert not np.array_equal(a, seeded_rng("regions", "x", 4).integers(0, 2**31, 4))
