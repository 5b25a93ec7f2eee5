"""Fill the on-disk frozen-feature cache with several processes before training.

The vision tower is frozen, so encoding every training image once is pure preprocessing; doing it
in parallel (each process takes every N-th image) keeps the single training process busy with the
parts that learn. The cache layout and keys are exactly the trainer's (``FeatureStore``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import torch

from ..errors import ConfigError
from ..workers import die_with_parent, limit_torch_threads, threads_per_worker
from .config import TrainConfig
from .data import ImageRef, load_images, step_indices
from .features import FeatureStore, supports_split
from .trainer import _val_images, build_for_training, load_tokenizer_for


def images_to_encode(cfg: TrainConfig) -> list[ImageRef]:
    """The validation images and the training images the run will draw: with ``max_steps``, only those
    its steps draw (as a one-process run draws them; a fine-tuning run of a few hundred steps sees a
    fraction of a large corpus), else all of them."""
    images = load_images(cfg.data.train, cfg.data.train_split, cfg.data.image_limit, cfg.data.train_repeat)
    if cfg.max_steps:
        drawn: set[int] = set()
        for micro in range(cfg.max_steps * cfg.grad_accum):
            drawn.update(step_indices(len(images), cfg.seed, micro, cfg.batch_images)[1])
        images = [images[i] for i in sorted(drawn)]
    val, rois = [], 0
    for ref in _val_images(cfg):  # validation scores the first val_max_rois labelled ROIs, in order
        if rois >= cfg.data.val_max_rois:
            break
        val.append(ref)
        rois += sum(r.quality_level is not None for r in ref.record.rois)
    unique = {ref.key: ref for ref in images + val}  # repeated folders list images twice
    return list(unique.values())


def _work(cfg: TrainConfig, index: int, workers: int, queue: mp.Queue, owner: int) -> None:
    die_with_parent(owner)  # a killed precompute must not leave workers encoding on their own
    limit_torch_threads(threads_per_worker(workers))
    torch.manual_seed(cfg.seed)
    model = build_for_training(cfg, load_tokenizer_for(cfg)).eval()
    store = FeatureStore(model, "disk", cfg.cache_dir)
    for ref in images_to_encode(cfg)[index::workers]:
        with torch.no_grad():
            store.get(ref)
        store.memory.clear()  # this process only writes the cache
        queue.put(1)
    queue.put(None)


def precompute_features(cfg: TrainConfig, workers: int = 2, progress: bool = True) -> int:
    """Encode the training images the run draws and the validation images into ``cfg.cache_dir``
    (:func:`images_to_encode`); returns the image count."""
    if cfg.feature_cache != "disk" or cfg.cache_dir is None:
        raise ConfigError("precomputing features needs feature_cache: disk and a cache_dir in the config")
    probe = build_for_training(cfg, load_tokenizer_for(cfg))
    if not supports_split(probe):
        raise ConfigError(f"model {cfg.model!r} has no frozen/trainable split; its features cannot be cached")
    total = len(images_to_encode(cfg))
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_work, args=(cfg, i, workers, queue, os.getpid())) for i in range(workers)]
    for p in procs:
        p.start()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="features", unit="img")
    finished, done, t0 = 0, 0, time.perf_counter()
    while finished < workers:
        item = queue.get()
        if item is None:
            finished += 1
        else:
            done += 1
            if bar:
                bar.update(1)
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise ConfigError(f"a feature worker failed with exit code {p.exitcode}")
    if bar:
        bar.close()
    print(f"{done} images encoded in {time.perf_counter() - t0:.1f} s")
    return done
