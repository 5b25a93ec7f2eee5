"""Load test of `seagull serve`: N concurrent clients on loopback for a bounded time.

Starts the server as its own process on 127.0.0.1 (never another address), warms it up, then runs
``--clients`` closed-loop clients (each sends its next request when the last one is answered, after
``--think`` seconds) for ``--duration`` seconds. With ``--photos same`` (the default) every request
posts the same photo with a new box, as the web page does when a user clicks around one photo (the
server's image cache then skips the tower and the prompt prefix); with ``--photos distinct`` every
request posts a photo the server has not seen (the photo rolled by a different offset), so each one
pays for the whole model. Reports requests/s, p50/p95/max latency, errors by
kind, the server's resident memory (RSS) before and after, and the worker's batching; prints a table
and writes JSON to benchmarks/results/.

    python benchmarks/serve_load.py                      # default model, 20 clients, 30 s, /v1/assess
    python benchmarks/serve_load.py --model path/to/model --endpoint map --clients 4
    python benchmarks/serve_load.py --photos distinct     # a new photo in every request
    python benchmarks/serve_load.py --random-model       # a small random model (until the default exists)

Target (issue 7) with the default model: 20 clients, zero errors, p95 <= 2 s, RSS growth < 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_IMAGE = REPO / "examples" / "coffee.jpg"
HOST = "127.0.0.1"


@dataclass
class Sample:
    start: float
    latency: float
    status: int  # 0 = no HTTP answer (connection error, client timeout)


@dataclass
class Report:
    model: str
    model_note: str
    endpoint: str
    photos: str
    clients: int
    duration_s: float
    think_s: float
    image: str
    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    p50_s: float = 0.0
    p95_s: float = 0.0
    max_s: float = 0.0
    warmup_s: float = 0.0
    rss_start_mb: float = 0.0  # idle server, model loaded, before any request
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    rss_growth_pct: float = 0.0
    rss_series_mb: list[float] = field(default_factory=list)  # sampled each second during the run
    batches: int = 0
    mean_batch: float = 0.0
    # CPU seconds per answered request during the measured run: both sides share this machine's cores.
    server_cpu_ms_per_request: float = 0.0
    client_cpu_ms_per_request: float = 0.0
    worker_busy_ms_per_request: float = 0.0  # wall time the inference thread spent on the model
    image_cache_hits: int = 0  # during the measured run
    image_cache_misses: int = 0
    target_met: bool = False
    machine: str = ""
    cpus: int = 0
    load_avg_before: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def random_model_folder(root: Path) -> Path:
    """A randomly initialised `seagull-test` model saved as a folder (only to exercise the server)."""
    import torch

    from seagull.model import build_model
    from seagull.model.tokenizer import train_tokenizer

    torch.manual_seed(0)
    tok = train_tokenizer()
    folder = root / "seagull-test-random"
    build_model("seagull-test", tokenizer=tok).eval().save_pretrained(folder, tokenizer=tok)
    return folder


def pick_model(args: argparse.Namespace, tmp: Path) -> tuple[str | None, str, str]:
    """(model argument for `seagull serve`, label, note)."""
    if args.model:
        return args.model, Path(args.model).name, "model folder given on the command line"
    if not args.random_model:
        from seagull.assess import DEFAULT_WEIGHTS_DIR

        if (DEFAULT_WEIGHTS_DIR / "config.json").is_file():
            return None, "default", "the shipped default model"
        print(
            "no shipped default model yet: measuring with a small random `seagull-test` model",
            file=sys.stderr,
        )
    folder = random_model_folder(tmp)
    return str(folder), folder.name, "small random `seagull-test` model (NOT the default model)"


def start_server(model: str | None, port: int, log: Path, extra: list[str]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "seagull",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    cmd += (["--model", model] if model else []) + extra
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not become healthy within {timeout:.0f} s")


def request_parts(endpoint: str, client: int, i: int, width: int, height: int) -> tuple[str, dict]:
    """Path and form fields; the box moves per request so no two requests are identical."""
    bw, bh = width // 3, height // 3
    x = (client * 37 + i * 13) % max(1, width - bw)
    y = (client * 23 + i * 7) % max(1, height - bh)
    if endpoint == "assess":
        return "/v1/assess", {"box": f"{x},{y},{bw},{bh}"}
    if endpoint == "segment":
        return "/v1/segment", {"box": f"{x},{y},{bw},{bh}"}
    return "/v1/map", {"max_regions": "12"}


async def client_loop(
    url: str,
    endpoint: str,
    cid: int,
    photos: PhotoSource,
    size: tuple[int, int],
    stop: float,
    think: float,
    out: list,
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        i = 0
        while time.monotonic() < stop:
            path, data = request_parts(endpoint, cid, i, *size)
            t0 = time.monotonic()
            try:
                photo = photos.next()
                r = await http.post(path, files={"image": ("photo.jpg", photo, "image/jpeg")}, data=data)
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            out.append(Sample(t0, time.monotonic() - t0, status))
            i += 1
            if think:
                await asyncio.sleep(think)


async def run_clients(url, endpoint, clients, photos, size, duration, think) -> list[Sample]:
    samples: list[Sample] = []
    stop = time.monotonic() + duration
    await asyncio.gather(
        *(client_loop(url, endpoint, c, photos, size, stop, think, samples) for c in range(clients))
    )
    return samples


class PhotoSource:
    """The photo of each request: always the same bytes, or (``distinct``) a new variant each time."""

    def __init__(self, path: Path, distinct: bool, count: int) -> None:
        self.data = path.read_bytes()
        self.variants: list[bytes] = []
        if distinct:
            import io

            import numpy as np
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
            h, w = arr.shape[:2]
            for k in range(count):  # rolled by k pixels (wrapping to rows): no two share their pixels
                buf = io.BytesIO()
                rolled = np.roll(np.roll(arr, k % w, axis=1), (k // w) % h, axis=0)
                Image.fromarray(rolled).save(buf, "JPEG", quality=92)
                self.variants.append(buf.getvalue())
        self.sent = 0

    def next(self) -> bytes:
        if not self.variants:
            return self.data
        if self.sent >= len(self.variants):
            raise RuntimeError("ran out of distinct photos; raise the count in PhotoSource")
        self.sent += 1
        return self.variants[self.sent - 1]


def sample_rss(proc: psutil.Process, out: list[float], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        out.append(round(proc.memory_info().rss / 2**20, 1))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def cache_count(h0: dict, h1: dict, key: str) -> int:
    if not h0.get("image_cache") or not h1.get("image_cache"):
        return 0
    return int(h1["image_cache"][key] - h0["image_cache"][key])


def per_request(seconds: float, n: int) -> float:
    return round(1000 * seconds / n, 1) if n else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="model folder (default: the shipped default model)")
    p.add_argument("--random-model", action="store_true", help="use a small random `seagull-test` model")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load (after the warm-up)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds of the same load before measuring")
    p.add_argument("--think", type=float, default=0.0, help="seconds each client waits between requests")
    p.add_argument("--endpoint", choices=("assess", "segment", "map"), default="assess")
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    p.add_argument(
        "--photos",
        choices=("same", "distinct"),
        default="same",
        help="same: one photo, a new box per request (the page's clicks); distinct: a new photo per request",
    )
    p.add_argument("--max-batch", type=int, default=None, help="server: assess requests batched together")
    p.add_argument("--tag", default="", help="suffix of the JSON result's file name")
    args = p.parse_args(argv)
    if args.clients < 1 or args.duration <= 0:
        p.error("--clients and --duration must be positive")

    from PIL import Image

    # Enough distinct photos for 30 requests/s over the warm-up and the run.
    photos = PhotoSource(args.image, args.photos == "distinct", int(30 * (args.warmup + args.duration)) + 100)
    with Image.open(args.image) as im:
        size = im.size
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        model, label, note = pick_model(args, tmp)
        port = free_port()
        url = f"http://{HOST}:{port}"
        extra = ["--queue-size", str(max(64, 2 * args.clients))]
        if args.max_batch:
            extra += ["--max-batch", str(args.max_batch)]
        log = tmp / "server.log"
        load_before = list(os.getloadavg())
        proc = start_server(model, port, log, extra)
        try:
            wait_healthy(url, proc)
            server = psutil.Process(proc.pid)
            rss_start = server.memory_info().rss
            # Warm-up at the same concurrency: lazy imports, allocator pools and the largest batches
            # are in place, so "before -> after" measures growth under steady load (a leak), not start-up.
            asyncio.run(run_clients(url, args.endpoint, args.clients, photos, size, args.warmup, args.think))
            rss0 = server.memory_info().rss
            h0 = httpx.get(f"{url}/healthz").json()
            series: list[float] = []
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(server, series, sampling), daemon=True)
            sampler.start()
            cpu0 = server.cpu_times()
            own0 = psutil.Process().cpu_times()
            t0 = time.monotonic()
            samples = asyncio.run(
                run_clients(url, args.endpoint, args.clients, photos, size, args.duration, args.think)
            )
            wall = time.monotonic() - t0
            cpu1 = server.cpu_times()
            own1 = psutil.Process().cpu_times()
            sampling.set()
            sampler.join()
            rss1 = server.memory_info().rss
            h1 = httpx.get(f"{url}/healthz").json()
        except BaseException:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()

    lat = sorted(s.latency for s in samples if s.status == 200)
    errors: dict[str, int] = {}
    for s in samples:
        if s.status != 200:
            key = str(s.status) if s.status else "no answer"
            errors[key] = errors.get(key, 0) + 1
    batches = h1["batches"] - h0["batches"]
    jobs = h1["jobs"] - h0["jobs"]
    rep = Report(
        model=label,
        model_note=note,
        endpoint=args.endpoint,
        photos=args.photos,
        clients=args.clients,
        duration_s=round(wall, 2),
        think_s=args.think,
        image=f"{args.image.name} ({size[0]}x{size[1]})",
        requests=len(samples),
        ok=len(lat),
        errors=errors,
        rps=round(len(lat) / wall, 3),
        p50_s=round(percentile(lat, 50), 3),
        p95_s=round(percentile(lat, 95), 3),
        max_s=round(lat[-1], 3) if lat else float("nan"),
        warmup_s=args.warmup,
        rss_start_mb=round(rss_start / 2**20, 1),
        rss_before_mb=round(rss0 / 2**20, 1),
        rss_after_mb=round(rss1 / 2**20, 1),
        rss_growth_pct=round(100 * (rss1 - rss0) / rss0, 2),
        rss_series_mb=series,
        batches=batches,
        mean_batch=round(jobs / batches, 2) if batches else 0.0,
        server_cpu_ms_per_request=per_request(sum(cpu1[:2]) - sum(cpu0[:2]), len(lat)),
        client_cpu_ms_per_request=per_request(sum(own1[:2]) - sum(own0[:2]), len(lat)),
        worker_busy_ms_per_request=per_request(h1["busy_s"] - h0["busy_s"], jobs),
        image_cache_hits=cache_count(h0, h1, "hits"),
        image_cache_misses=cache_count(h0, h1, "misses"),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        cpus=os.cpu_count() or 0,
        load_avg_before=[round(v, 2) for v in load_before],
    )
    rep.target_met = bool(
        rep.clients >= 20 and not rep.errors and rep.p95_s <= 2.0 and rep.rss_growth_pct < 10.0
    )
    rows = [
        ("model", f"{rep.model} ({rep.model_note})"),
        ("endpoint / image / photos", f"{rep.endpoint} / {rep.image} / {rep.photos}"),
        ("clients / think", f"{rep.clients} / {rep.think_s:g} s"),
        ("duration", f"{rep.duration_s:.1f} s"),
        ("requests (ok)", f"{rep.requests} ({rep.ok})"),
        ("errors", json.dumps(rep.errors) if rep.errors else "0"),
        ("requests/s", f"{rep.rps:.2f}"),
        ("latency p50 / p95 / max", f"{rep.p50_s:.3f} / {rep.p95_s:.3f} / {rep.max_s:.3f} s"),
        (
            "server RSS idle / before / after",
            f"{rep.rss_start_mb:.0f} / {rep.rss_before_mb:.0f} / {rep.rss_after_mb:.0f} MiB",
        ),
        (
            "RSS growth (before -> after)",
            f"{rep.rss_growth_pct:+.1f} %  ({rep.warmup_s:g} s warm-up at the same load)",
        ),
        ("worker batches (mean size)", f"{rep.batches} ({rep.mean_batch:.2f})"),
        (
            "per request: model wall / server CPU / client CPU",
            f"{rep.worker_busy_ms_per_request:.0f} / {rep.server_cpu_ms_per_request:.0f} / "
            f"{rep.client_cpu_ms_per_request:.0f} ms",
        ),
        ("image cache hits / misses", f"{rep.image_cache_hits} / {rep.image_cache_misses}"),
        ("cpus / load before", f"{rep.cpus} / {rep.load_avg_before}"),
        (
            "target (20 clients, 0 errors, p95<=2s, RSS<+10%)",
            ("met" if rep.target_met else "NOT met")
            if rep.endpoint == "assess" and rep.clients >= 20
            else "not applicable (it is set for /v1/assess with 20 clients)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nseagull serve load test")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"serve_load_{rep.endpoint}_{rep.photos}_{rep.clients}c{('_' + args.tag) if args.tag else ''}.json"
    (RESULTS / name).write_text(json.dumps(asdict(rep), indent=2) + "\n")
    print(f"  -> {RESULTS.relative_to(REPO) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
