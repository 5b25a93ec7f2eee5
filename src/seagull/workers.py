"""Local worker processes that die with their parent, and share the cores instead of multiplying threads.

A pool worker blocks on its task queue, and a forked worker holds that queue's pipe open itself, so
when the parent is killed (SIGKILL, the out-of-memory killer) nothing tells the worker: it would
live on, holding its memory, forever. :func:`die_with_parent` runs in each worker when it starts:
on Linux the kernel sends it SIGKILL when its parent dies (``PR_SET_PDEATHSIG``); everywhere a
daemon thread also checks once a second whether the worker has been handed to a new parent.

Every pool of model or image workers (synthesis, feature precomputation, Ray actors) divides the
cores: each worker runs :func:`limit_torch_threads` with :func:`threads_per_worker`, so workers x
threads <= cores. Left alone, torch gives every process one thread per core; two model processes on a
2-core machine then slowed each other about tenfold (an evaluation went from 1.6 items/s alone to one
item per 10-16 s beside another model process).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
WATCH_INTERVAL_S = 1.0


def _kernel_kills_orphans() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (best effort elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog below still ends the worker


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)  # orphaned: nobody will collect this worker's results


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def die_with_parent(owner: int) -> None:
    """Pool initializer: end this worker when its parent dies. ``owner`` is the pid of the process
    that made the pool; the direct parent differs from it under the forkserver start method, whose
    server in turn ends when the owner does."""
    _kernel_kills_orphans()
    parent = os.getppid()
    if parent != owner and not _pid_alive(owner):
        os._exit(1)  # the owner died before the death signal was armed
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes so that workers x threads <= cores (at least 1)."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


def limit_torch_threads(n: int) -> None:
    """Use ``n`` intra-op threads in this process (a no-op when torch is not installed or already there)."""
    try:
        import torch
    except ImportError:
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def wait_passively() -> bool:
    """Let torch's OpenMP threads sleep, not spin, between parallel regions (``OMP_WAIT_POLICY=PASSIVE``)
    unless the environment already sets a policy. It applies only when torch has not been imported yet
    (OpenMP reads it once); returns whether it applies.

    A spinning thread holds a core it is not using; once any other thread wants that core (a decode
    thread of this process, another process), every parallel region waits for threads that are not
    running. On the 2-core VM beside other jobs, one photo took 5.8-9.1 s with 2 torch threads spinning
    and 0.6 s with them sleeping (as with 1 thread)."""
    if "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers end when this process ends, even by SIGKILL."""
    return ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
