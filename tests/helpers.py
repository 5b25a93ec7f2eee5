"""What several test modules share: the example photo's bytes, REST request builders, labelled
ROI records for generated datasets, running a benchmark script, stopping a run at a known point."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from seagull.labels import (
    DEFAULT_THRESHOLDS,
    DistortionLabel,
    importance_level,
    quality_level,
    severity_level,
)
from seagull.records import RoiRecord
from seagull.roi import mask_bbox, mask_to_rle

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
BENCHMARKS = REPO / "benchmarks"
COFFEE = (EXAMPLES / "coffee.jpg").read_bytes()  # 600 x 400
# What the test apps answer to (the server answers only the hosts it is told to allow): the name
# Starlette's TestClient sends, and loopback for the tests that run the app on a real server.
TEST_HOSTS = ("testserver", "127.0.0.1")


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def post(client, path: str, image: bytes = COFFEE, name: str = "coffee.jpg", files=None, **data):
    """A multipart POST of ``image`` (as the ``image`` field), extra ``files`` and form fields ``data``."""
    parts = [("image", (name, image, "image/jpeg"))] + list(files or [])
    return client.post(path, files=parts, data=data)


def roi_record(k: int, mask: np.ndarray, quality: float, importance: float, family: str | None) -> RoiRecord:
    """ROI ``r<k>`` of ``mask`` labelled with these scores; ``family`` is named as its distortion when
    the damage (1 - quality) is visible."""
    damage = 1 - quality
    dists = []
    if family and damage >= DEFAULT_THRESHOLDS.visible:
        dists = [DistortionLabel(family, damage, severity_level(damage))]
    return RoiRecord(
        id=f"r{k}",
        rle=mask_to_rle(mask),
        bbox=list(mask_bbox(mask)),
        area=int(mask.sum()),
        source="test:box",
        quality=quality,
        quality_level=quality_level(quality),
        importance=importance,
        importance_level=importance_level(importance),
        distortions=dists,
    )


def labelled_roi(
    quality_level: str,
    importance_level: str | None,
    *distortions: tuple[str, str],
    quality: float = 0.5,
    importance: float | None = None,
) -> RoiRecord:
    """A one-pixel ROI record with these levels and ``(type, severity level)`` distortions (damage 0.3)."""
    return RoiRecord(
        id="r",
        rle={},
        bbox=[0, 0, 1, 1],
        area=1,
        source="test",
        quality=quality,
        quality_level=quality_level,
        importance=importance,
        importance_level=importance_level,
        distortions=[DistortionLabel(t, 0.3, s) for t, s in distortions],
    )


def run_benchmark(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<name> --smoke *args`` offline; its output is captured as text."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / name), "--smoke", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=900,
    )


# --------------------------------------------------------------------------- stopping a run at a known point
HOLD_SITE = Path(__file__).resolve().parent / "hold_after_shards"


def start_held(cmd: list[str], hold_dir: Path, after: int = 1) -> subprocess.Popen:
    """Start ``cmd`` (a Python command line, in a new session) so that each of its processes stops for
    good right after writing its ``after``-th dataset shard (``hold_after_shards/sitecustomize.py``),
    leaving a file named after its pid in ``hold_dir``; its stderr goes to ``hold_dir/../stderr.txt``."""
    hold_dir.mkdir(parents=True)
    path = os.pathsep.join(p for p in (str(HOLD_SITE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "SEAGULL_TEST_HOLD_DIR": str(hold_dir), "SEAGULL_TEST_HOLD_AFTER": str(after)}
    with (hold_dir.parent / "stderr.txt").open("wb") as err:
        return subprocess.Popen(
            cmd,
            env={**env, "PYTHONPATH": path},
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def wait_until_held(
    proc: subprocess.Popen, hold_dir: Path, processes: int, timeout: float = 120.0
) -> list[int]:
    """Wait until ``processes`` processes of the run ``proc`` (started by :func:`start_held`) have
    stopped at their hold, and return their pids; fail if the run ends first or ``timeout`` passes."""
    import time

    deadline = time.monotonic() + timeout
    held: list[int] = []
    while len(held) < processes:
        err = (hold_dir.parent / "stderr.txt").read_text(errors="replace")[-2000:]
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before it was held:\n{err}"
        assert time.monotonic() < deadline, f"{len(held)} of {processes} processes held after {timeout} s"
        time.sleep(0.02)  # polling the hold files, not waiting for something to happen by itself
        held = sorted(int(p.name) for p in hold_dir.iterdir())
    return held


# --------------------------------------------------------------------------- worker processes (Linux /proc)
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    return kids


def _descendants(pid: int) -> set[int]:
    kids, found, todo = _children(), set(), [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


def kill_and_check_workers_die(
    cmd: list[str], workers: int, tmp_path: Path, start_timeout: float = 120.0
) -> None:
    """Run ``cmd``, wait until each of its ``workers`` worker processes is held inside a work item (it
    has written one shard: see :func:`start_held`) while the run waits for them, SIGKILL the run, and
    assert that the workers end too."""
    import contextlib
    import signal
    import time

    hold = tmp_path / "held"
    proc = start_held(cmd, hold)
    found: set[int] = set()
    try:
        held = wait_until_held(proc, hold, workers, start_timeout)
        found = _descendants(proc.pid)
        assert proc.pid not in held and set(held) <= found, f"held {held}, not workers of {proc.pid}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in found):
            time.sleep(0.1)
        assert not [p for p in found if _alive(p)], "workers outlived their killed parent"
    finally:
        for p in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
