"""The inference worker: one thread, a bounded queue, batching of compatible jobs, timeouts.

A recording stand-in for the assessor makes batching and blocking observable; the model itself is
exercised through the API tests.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from seagull.errors import RoiError
from seagull.roi import Roi
from seagull.serve import worker as worker_module
from seagull.serve.worker import InferenceWorker, JobTimeoutError, QueueFullError


class Recorder:
    """assess_batch echoes (image id, ROI names) and records which thread ran which batch sizes.

    ``entered`` is set when a batch reaches the model; while ``gate`` is clear, the batch waits there.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def assess_batch(self, images, rois, tasks, text):
        self.entered.set()
        self.gate.wait(10)
        self.threads.add(threading.current_thread().name)
        self.batches.append(len(images))
        for im in images:
            if im[0, 0, 0] == 255:
                raise RoiError("poisoned image")
        return [
            [(int(im[0, 0, 1]), [r.name for r in rs], tuple(tasks))]
            for im, rs in zip(images, rois, strict=True)
        ]

    def assess(self, image, rois, tasks, text):
        return self.assess_batch([image], [rois], tasks, text)[0]


def image(i: int) -> np.ndarray:
    a = np.zeros((4, 4, 3), np.uint8)
    a[0, 0, 1] = i
    return a


ROI = [Roi(np.ones((4, 4), bool), "all")]


def test_waiting_jobs_with_equal_tasks_run_as_one_batch():
    rec = Recorder()
    w = InferenceWorker(rec, queue_size=16, max_batch=4)
    rec.gate.clear()
    futs = [w.submit_assess(image(0), ROI, ("quality",), False, 10)]
    assert rec.entered.wait(10)  # the first job is now running (held at the gate)
    futs += [w.submit_assess(image(i), ROI, ("quality",), False, 10) for i in range(1, 6)]
    futs.append(w.submit_assess(image(9), ROI, ("importance",), False, 10))
    rec.gate.set()
    results = [f.result(10) for f in futs]
    assert [r[0][0] for r in results] == [0, 1, 2, 3, 4, 5, 9]  # each caller gets its own answer
    assert results[-1][0][2] == ("importance",)
    assert rec.batches[0] == 1 and rec.batches[1] == 4 and sum(rec.batches) == 7
    assert rec.threads == {"seagull-inference"}
    w.stop()
    assert not w.alive


def test_one_bad_job_does_not_fail_its_batch():
    rec = Recorder()
    w = InferenceWorker(rec, queue_size=8, max_batch=8)
    rec.gate.clear()
    first = w.submit_assess(image(1), ROI, ("quality",), False, 10)
    assert rec.entered.wait(10)
    bad = image(2)
    bad[0, 0, 0] = 255
    futs = [w.submit_assess(im, ROI, ("quality",), False, 10) for im in (image(3), bad, image(4))]
    rec.gate.set()
    assert first.result(10)[0][0] == 1
    assert futs[0].result(10)[0][0] == 3 and futs[2].result(10)[0][0] == 4
    with pytest.raises(RoiError, match="poisoned"):
        futs[1].result(10)
    w.stop()


class Clock:
    """The worker's clock, moved by the test: deadlines pass when the test says so, not after a sleep."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    perf_counter = staticmethod(time.perf_counter)  # the busy-time statistics keep the real clock


def test_full_queue_is_refused_and_expired_jobs_are_skipped(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(worker_module, "time", clock)
    rec = Recorder()
    w = InferenceWorker(rec, queue_size=2, max_batch=1)
    rec.gate.clear()
    running = w.submit_assess(image(1), ROI, ("quality",), False, 10)
    assert rec.entered.wait(10)
    stale = w.submit_assess(image(2), ROI, ("quality",), False, 0.05)
    later = w.submit_assess(image(3), ROI, ("quality",), False, 10)
    with pytest.raises(QueueFullError, match="2 requests"):
        w.submit_assess(image(4), ROI, ("quality",), False, 10)
    clock.now += 1.0  # the stale job's 0.05 s deadline passes while it waits in the queue
    rec.gate.set()
    assert running.result(10)[0][0] == 1
    assert later.result(10)[0][0] == 3  # the queue is in order: the stale job was handled before it
    assert stale.cancelled() and w.stats.expired == 1
    assert rec.batches == [1, 1]  # the stale job never reached the model
    w.stop()


def test_wait_times_out_and_cancels_a_queued_job():
    rec = Recorder()
    w = InferenceWorker(rec, queue_size=4, max_batch=1)
    rec.gate.clear()
    w.submit_assess(image(1), ROI, ("quality",), False, 10)
    assert rec.entered.wait(10)
    queued = w.submit_assess(image(2), ROI, ("quality",), False, 10)
    with pytest.raises(JobTimeoutError, match="0.2 s"):
        asyncio.run(w.wait(queued, 0.2))
    assert queued.cancelled()
    rec.gate.set()
    done = w.submit_call(lambda: 41 + 1, 10)
    assert asyncio.run(w.wait(done, 10)) == 42
    assert rec.batches == [1]
    w.stop()


def test_call_errors_reach_the_caller():
    w = InferenceWorker(Recorder())

    def boom():
        raise RoiError("bad region")

    with pytest.raises(RoiError, match="bad region"):
        w.submit_call(boom, 5).result(5)
    assert w.submit_call(lambda: "ok", 5).result(5) == "ok"
    w.stop()
