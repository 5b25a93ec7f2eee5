"""What several test modules share: the example photo's bytes, REST request builders, labelled
ROI records for generated datasets, running a benchmark script."""

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


def kill_and_check_workers_die(cmd: list[str], workers: int, start_timeout: float = 120.0) -> None:
    """Run ``cmd``, wait for its ``workers`` worker processes, SIGKILL it, and assert they end too."""
    import contextlib
    import signal
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    found: set[int] = set()
    try:
        deadline = time.time() + start_timeout
        while time.time() < deadline and len(found) < workers and proc.poll() is None:
            found = _descendants(proc.pid)
            time.sleep(0.05)
        assert len(found) >= workers, f"the run should have started its {workers} workers"
        time.sleep(1.0)  # let them settle into their work items
        found = _descendants(proc.pid)
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
