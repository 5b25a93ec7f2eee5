"""The image cache: byte-bounded LRU keyed by pixels; an Assessor with it gives the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from seagull.assess import Assessor
from seagull.assess.image_cache import ImageCache, image_digest
from seagull.roi import Roi, box_to_mask


def test_digest_follows_pixels_shape_and_dtype():
    a = np.zeros((4, 5, 3), np.uint8)
    b = a.copy()
    assert image_digest(a) == image_digest(b)
    b[0, 0, 0] = 1
    assert image_digest(a) != image_digest(b)
    assert image_digest(a) != image_digest(a.reshape(5, 4, 3))
    assert image_digest(a) != image_digest(a.astype(np.float32))
    assert image_digest(a[:, ::-1]) == image_digest(np.ascontiguousarray(a[:, ::-1]))


def test_least_recently_used_entries_leave_first_within_the_byte_budget():
    cache = ImageCache(max_bytes=100)
    assert cache.put("a", 1, 40) and cache.put("b", 2, 40)
    assert cache.get("a") == 1  # "b" is now the least recently used
    assert cache.put("c", 3, 40)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.nbytes == 80 and len(cache) == 2
    assert not cache.put("huge", 4, 101) and cache.get("huge") is None
    assert cache.put("a", 5, 10) and cache.get("a") == 5 and cache.nbytes == 50
    assert (cache.hits, cache.misses) == (4, 2)
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    assert not ImageCache(0).enabled
    with pytest.raises(ValueError, match="max_bytes"):
        ImageCache(-1)


@pytest.fixture(scope="module")
def models(micro_model, micro_tokenizer):
    return (
        Assessor(micro_model, tokenizer=micro_tokenizer),
        Assessor(micro_model, tokenizer=micro_tokenizer, image_cache_mb=16),
    )


def _scores(results) -> list[float]:
    return [
        v
        for rr in results
        for r in rr
        for v in (r.quality, r.importance, *(d.confidence for d in r.distortions))
    ]


def test_cached_images_give_the_same_answers(models):
    plain, cached = models
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2))
    rois = [Roi(box_to_mask([2, 3, 20, 15], 48, 64)), Roi(box_to_mask([30, 10, 30, 30], 48, 64))]
    want = _scores(plain.assess_batch([a, b, a.copy()], [rois, rois[:1], rois[1:]]))
    first = _scores(cached.assess_batch([a, b, a.copy()], [rois, rois[:1], rois[1:]]))
    assert (cached.image_cache.misses, len(cached.image_cache)) == (2, 2)  # a and its copy: one entry
    again = _scores(cached.assess_batch([b, a], [rois[:1], rois]))  # both from the cache, other order
    assert cached.image_cache.hits == 2
    assert first == pytest.approx(want, abs=1e-5)
    assert again == pytest.approx(_scores(plain.assess_batch([b, a], [rois[:1], rois])), abs=1e-5)
    c, d = (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2))
    fresh = _scores(cached.assess_batch([c, d], [rois, rois[:1]]))  # all new: the encoded batch as is
    assert fresh == pytest.approx(_scores(plain.assess_batch([c, d], [rois, rois[:1]])), abs=1e-5)
    assert len(cached.image_cache) == 4
