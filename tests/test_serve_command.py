"""`seagull serve` as a real process: starts, answers on loopback only, and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")

from helpers import COFFEE  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_seagull_serve_starts_on_loopback(tmp_path: Path, micro_model_dir: Path):
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seagull", "serve", "--model", str(micro_model_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert health is not None and health.status_code == 200, (tmp_path / "serve.log").read_text()
        assert health.json()["model"] == micro_model_dir.name
        listening = [
            c.laddr
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(a.ip == "127.0.0.1" for a in listening) and listening[0].port == port
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/assess",
            files={"image": ("c.jpg", COFFEE)},
            data={"box": "10,10,100,100", "tasks": "quality"},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["rois"][0]["bbox"] == [10, 10, 100, 100]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()


def test_serve_without_a_model_says_what_to_do(capsys, monkeypatch, tmp_path):
    from seagull.assess import assessor
    from seagull.cli import main

    monkeypatch.setattr(assessor, "DEFAULT_WEIGHTS_DIR", tmp_path / "no-weights")
    assert main(["serve", "--port", "1"]) == 2
    assert "pass a model folder" in capsys.readouterr().err
