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


@pytest.fixture()
def no_server(monkeypatch):
    """``seagull serve`` with the app and uvicorn replaced: what it would start, and nothing runs."""
    import uvicorn

    from seagull.serve import app as app_module
    from seagull.serve import commands

    started: dict = {}
    # Process-wide settings for a real server: not for the test process.
    monkeypatch.setattr(commands, "keep_openmp_threads_spinning", lambda: None)
    monkeypatch.setattr(commands, "limit_malloc_arenas", lambda: None)

    def fake_create_app(model, limits, **kw):
        started.update(kw, limits=limits)
        return object()

    monkeypatch.setattr(app_module, "create_app", fake_create_app)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(run=kw))
    return started


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--port", "99999"),  # before: a traceback from bind() after the model had loaded
        ("--port", "-1"),
        ("--port", "http"),
        ("--max-upload-mb", "inf"),  # before: OverflowError converting it to bytes
        ("--max-upload-mb", "0"),
        ("--max-pixels", "1.5"),
        ("--max-rois", "0"),
        ("--timeout", "nan"),
        ("--timeout", "-3"),
        ("--queue-size", "0"),
        ("--max-batch", "-1"),
        ("--image-cache-mb", "-1"),
        ("--image-cache-mb", "inf"),
    ],
)
def test_a_bad_numeric_serve_option_is_a_usage_error_before_anything_starts(no_server, capsys, option, value):
    from seagull.cli import main

    with pytest.raises(SystemExit) as e:
        main(["serve", f"{option}={value}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert option in err and (value in err or "range" in err), err
    assert not no_server, "nothing may start for a bad option"


def test_serve_options_reach_the_app(no_server):
    from seagull.cli import main

    argv = ["serve", "--port", "0", "--max-upload-mb", "0.5", "--timeout", "2.5", "--image-cache-mb", "0"]
    assert main(argv) == 0
    limits = no_server["limits"]
    assert (limits.max_upload_bytes, limits.request_timeout_s, limits.image_cache_mb) == (2**19, 2.5, 0)
    assert no_server["run"]["port"] == 0
    assert no_server["allowed_hosts"] == ("127.0.0.1", "localhost", "::1")


def test_the_allowed_hosts_are_the_bound_address_and_loopback_unless_given(no_server, capsys):
    from seagull.cli import main

    assert main(["serve", "--host", "0.0.0.0"]) == 0
    assert no_server["allowed_hosts"] == ("0.0.0.0", "localhost", "127.0.0.1", "::1")
    assert "--allowed-hosts" in capsys.readouterr().err  # says how to name the others
    assert main(["serve", "--allowed-hosts", "seagull.example.org, *.lan"]) == 0
    assert no_server["allowed_hosts"] == ("seagull.example.org", "*.lan")


@pytest.mark.parametrize("value", ["", "a.example:8000", "a b", "x*y"])
def test_a_malformed_allowed_hosts_option_is_a_usage_error(no_server, capsys, value):
    from seagull.cli import main

    with pytest.raises(SystemExit) as e:
        main(["serve", f"--allowed-hosts={value}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--allowed-hosts: allowed hosts:" in err and not no_server, err
