"""The web page in headless Chromium: upload a photo, click a region, read the result; map every region.

Runs `seagull serve` as a real process on loopback with the shipped default model (what a user gets
from a fresh install), and drives Debian's system Chromium with Playwright (no browser download).
Screenshots go to tests/artifacts/.

Needs:  apt-get install -y chromium   and   pip install playwright   (never `playwright install`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
PHOTO = REPO / "examples" / "coffee.jpg"  # 600 x 400; the cup is around (300, 200)
CHROMIUM = os.environ.get("SEAGULL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's browser with `apt-get install -y chromium` "
        "(or set SEAGULL_CHROMIUM)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: `pip install playwright`"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`seagull serve` on a free loopback port with the shipped default model (no --model)."""
    port = free_port()
    log = (tmp_path_factory.getbasetemp() / "serve.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "seagull", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"seagull serve exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"seagull serve did not answer /healthz within 120 s; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 800})
        pg.set_default_timeout(90_000)
        pg.goto(server + "/")
        yield pg
        browser.close()


def click_photo_pixel(page, x: float, y: float) -> None:
    """Click the canvas where photo pixel (x, y) is shown (the canvas is scaled by CSS)."""
    box = page.locator("#canvas").bounding_box()
    size = page.evaluate(
        "[document.getElementById('canvas').width, document.getElementById('canvas').height]"
    )
    page.mouse.click(box["x"] + x * box["width"] / size[0], box["y"] + y * box["height"] / size[1])


def test_upload_click_and_read_the_region_result(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert "default" in page.locator("#model-info").inner_text()
    page.set_input_files("#file", str(PHOTO))
    page.wait_for_selector("body[data-state='ready']")
    assert page.evaluate("document.getElementById('canvas').width") == 600

    click_photo_pixel(page, 300, 200)
    page.wait_for_selector("body[data-state='done'], body[data-state='error']")
    status = page.locator("#status").inner_text()
    assert page.get_attribute("body", "data-state") == "done", status

    quality = float(page.locator("#quality").inner_text())
    assert 0.0 <= quality <= 1.0
    assert page.locator("#quality-level").inner_text() in ("bad", "poor", "fair", "good", "excellent")
    assert page.locator("#importance-level").inner_text() in (
        "unimportant",
        "minor",
        "normal",
        "important",
        "essential",
    )
    rows = page.locator("#distortions tbody tr")
    assert rows.count() == 6
    assert "px" in page.locator("#region-meta").inner_text()
    # The mask outline was drawn: the canvas changed near the clicked pixel's region boundary.
    assert (
        page.evaluate(
            "(() => { const c = document.getElementById('canvas').getContext('2d');"
            " const d = c.getImageData(0, 0, 600, 400).data; let n = 0;"
            " for (let i = 0; i < d.length; i += 4) if (d[i] < 40 && d[i+1] > 150 && d[i+2] > 200) n++;"
            " return n; })()"
        )
        > 50
    )  # outline pixels in the overlay colour (0, 200, 255)
    with page.expect_download() as dl:
        page.click("#download")
    saved = ARTIFACTS / "serve_region.json"
    dl.value.save_as(saved)
    assert '"rois"' in saved.read_text()
    page.screenshot(path=str(ARTIFACTS / "serve_region.png"), full_page=True)


def test_map_view_lists_the_worst_regions(page):
    page.check("input[name='mode'][value='map']")
    page.click("#map-run")
    page.wait_for_function(
        "document.body.dataset.state === 'error' ||"
        " (document.body.dataset.state === 'done' && document.querySelectorAll('#worst li').length > 0)"
    )
    assert page.get_attribute("body", "data-state") == "done", page.locator("#status").inner_text()
    items = page.locator("#worst li")
    assert items.count() >= 1
    first = items.nth(0).inner_text()
    assert first.startswith("tile_") and "quality" in first  # the default map: overlapping tiles
    items.nth(0).click()
    assert "active" in (items.nth(0).get_attribute("class") or "")
    page.hover("#canvas")  # the pointer over the photo shows the region under it
    hover = page.locator("#hover").inner_text()
    assert hover.startswith("tile_") and "quality" in hover and "importance" in hover, hover
    page.screenshot(path=str(ARTIFACTS / "serve_map.png"), full_page=True)
