"""One inference thread for the whole server.

The model is loaded once and used by exactly one thread, so requests never run the model
concurrently (torch already uses every core for one batch, and the model's caches are not
shared-state safe). Requests wait in a bounded queue; a full queue is refused at once (503) instead
of piling up memory. Waiting /v1/assess jobs with the same tasks are taken together and run as one
:meth:`Assessor.assess_batch`, which encodes the images in one pass.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..roi import Roi

log = logging.getLogger("seagull.serve")


class QueueFullError(Exception):
    """The inference queue holds ``queue_size`` jobs already."""


class JobTimeoutError(Exception):
    """A job did not finish within the request timeout (queue wait included)."""


@dataclass
class _Job:
    future: Future
    deadline: float
    # Batchable assessment: (image, rois, tasks, text); or a plain call.
    assess: tuple[np.ndarray, list[Roi], tuple[str, ...], bool] | None = None
    call: Callable[[], Any] | None = None

    @property
    def batch_key(self) -> tuple[tuple[str, ...], bool] | None:
        return (self.assess[2], self.assess[3]) if self.assess is not None else None


@dataclass
class WorkerStats:
    jobs: int = 0  # finished
    running: int = 0  # jobs in the batch on the model right now
    batches: int = 0
    largest_batch: int = 0
    expired: int = 0
    failed: int = 0
    busy_s: float = 0.0
    started: float = field(default_factory=time.time)


class InferenceWorker:
    """``submit_assess`` / ``submit_call`` return futures; ``await wait(future, timeout)`` in handlers."""

    def __init__(self, assessor: Any, queue_size: int = 64, max_batch: int = 8) -> None:
        self.assessor = assessor
        self.max_batch = int(max_batch)
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=int(queue_size))
        self._held: deque[_Job] = deque()  # taken from the queue while batching, not yet run
        self._stop_seen = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = WorkerStats()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="seagull-inference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)  # waits only while the queue is full
        except queue.Full:
            log.warning("inference queue still full at shutdown; not waiting for it")
            return
        thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def depth(self) -> int:
        return self._queue.qsize() + len(self._held)

    # ------------------------------------------------------------------ submitting

    def _put(self, job: _Job) -> Future:
        if not self.alive:
            self.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFullError(
                f"the server is busy: {self._queue.maxsize} requests are already waiting; retry shortly"
            ) from None
        return job.future

    def submit_assess(
        self, image: np.ndarray, rois: Sequence[Roi], tasks: Sequence[str], text: bool, timeout: float
    ) -> Future:
        return self._put(
            _Job(Future(), time.monotonic() + timeout, assess=(image, list(rois), tuple(tasks), bool(text)))
        )

    def submit_call(self, fn: Callable[[], Any], timeout: float) -> Future:
        return self._put(_Job(Future(), time.monotonic() + timeout, call=fn))

    @staticmethod
    async def wait(future: Future, timeout: float, budget: float | None = None) -> Any:
        """Await a job for ``timeout`` s (what is left of the request's ``budget``); on timeout the job
        is cancelled if it has not started, so the worker skips it."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise JobTimeoutError(
                f"the request did not finish within {budget or timeout:g} s (the server may be busy); "
                "retry later"
            ) from None

    # ------------------------------------------------------------------ the thread

    def _next(self) -> _Job | None:
        if self._held:
            return self._held.popleft()
        if self._stop_seen:
            return None
        return self._queue.get()

    def _take_batch(self, first: _Job) -> list[_Job]:
        batch = [first]
        key = first.batch_key
        if key is None:
            return batch
        # Held jobs first (they are older), then whatever is waiting in the queue right now.
        for job in list(self._held):
            if len(batch) >= self.max_batch:
                break
            if job.batch_key == key:
                self._held.remove(job)
                batch.append(job)
        while len(batch) < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # stop signal: honoured once the held jobs are done
                self._stop_seen = True
                break
            if job.batch_key == key:
                batch.append(job)
            else:
                self._held.append(job)
        return batch

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                self._cancel_waiting()
                return
            batch = [j for j in self._take_batch(job) if self._claim(j)]
            if not batch:
                continue
            t0 = time.perf_counter()
            self.stats.running = len(batch)
            try:
                if batch[0].call is not None:
                    self._run_call(batch[0])
                else:
                    self._run_assess(batch)
            finally:
                self.stats.running = 0
                self.stats.busy_s += time.perf_counter() - t0
                self.stats.batches += 1
                self.stats.jobs += len(batch)
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))

    def _cancel_waiting(self) -> None:
        self._stop_seen = False
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.cancel()

    def _claim(self, job: _Job) -> bool:
        """Mark a job running; skip it if its caller gave up or its deadline passed in the queue."""
        if time.monotonic() > job.deadline:
            job.future.cancel()
            self.stats.expired += 1
            return False
        return job.future.set_running_or_notify_cancel()

    def _run_call(self, job: _Job) -> None:
        try:
            job.future.set_result(job.call())  # type: ignore[misc]
        except BaseException as e:  # noqa: BLE001 - handed to the waiting request
            self.stats.failed += 1
            job.future.set_exception(e)

    def _run_assess(self, batch: list[_Job]) -> None:
        tasks, text = batch[0].batch_key  # type: ignore[misc]
        try:
            out = self.assessor.assess_batch(
                [j.assess[0] for j in batch],  # type: ignore[index]
                [j.assess[1] for j in batch],  # type: ignore[index]
                tasks=tasks,
                text=text,
            )
        except BaseException as e:  # noqa: BLE001
            if len(batch) == 1:
                self.stats.failed += 1
                batch[0].future.set_exception(e)
                return
            # One request spoiled the batch: run them one by one so only that one fails.
            log.info("batch of %d failed (%s); running its jobs one by one", len(batch), e)
            for j in batch:
                try:
                    j.future.set_result(self.assessor.assess(j.assess[0], j.assess[1], tasks, text))  # type: ignore[index]
                except BaseException as e1:  # noqa: BLE001
                    self.stats.failed += 1
                    j.future.set_exception(e1)
            return
        for j, res in zip(batch, out, strict=True):
            j.future.set_result(res)
