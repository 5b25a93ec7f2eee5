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
    python benchmarks/serve_load.py --bad-fraction 0.2   # 20 % malformed requests mixed in
    python benchmarks/serve_load.py --smoke               # a few seconds, 2 clients: does it run?

With ``--bad-fraction F`` each client sends a malformed /v1/assess request instead of a good one with
probability F (nested JSON, a bad box, bytes that are no image, a 1x1 photo, a field over the size
limit, a Host the server does not answer to, 50 ``image`` parts, in turn); the report then says how
many good requests were lost, how many 5xx came back, and how many bad requests got the 4xx they
deserve. The latency figures are of the good requests only.
``--save`` writes the JSON result (to ``--out``, or benchmarks/results/serve_load_<...>.json).

Target (issue 7) with the default model: 20 clients, zero errors, p95 <= 2 s, RSS growth < 10 %;
with bad requests mixed in, also no good request lost and no 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
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

from common import add_common_options

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_IMAGE = REPO / "examples" / "coffee.jpg"
HOST = "127.0.0.1"


@dataclass
class Sample:
    start: float
    latency: float
    status: int  # 0 = no HTTP answer (connection error, client timeout)
    bad: str = ""  # the kind of malformed request, "" for a good one


# Malformed /v1/assess requests of --bad-fraction, sent in turn: each must get a 4xx.
BAD_KINDS = (
    "nested_json",
    "bad_box",
    "not_image",
    "tiny_image",
    "huge_field",
    "wrong_host",  # a DNS-rebinding page's request: another site's name in Host
    "many_images",  # 50 image parts in one request
)
MANY_IMAGES = 50


def png_1x1() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (120, 90, 60)).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class Post:
    """One request: path, multipart file parts, form fields and extra headers."""

    path: str
    files: list[tuple[str, tuple[str, bytes, str]]]
    data: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def photo_parts(photo: bytes, n: int = 1) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (f"photo{i}.jpg" if i else "photo.jpg", photo, "image/jpeg")) for i in range(n)]


def bad_request(kind: str, photo: bytes) -> Post:
    """One malformed request of ``kind``."""
    if kind == "nested_json":
        return Post("/v1/assess", photo_parts(photo), {"rois": "[" * 5000})
    if kind == "bad_box":
        return Post("/v1/assess", photo_parts(photo), {"box": "10,20,x,40"})
    if kind == "not_image":
        return Post("/v1/assess", photo_parts(b"this is not an image\n" * 20))
    if kind == "tiny_image":
        return Post("/v1/assess", photo_parts(png_1x1()))
    if kind == "huge_field":  # over the 1 MiB limit of one multipart text field
        return Post("/v1/assess", photo_parts(photo), {"rois": " " * (2**20 + 100)})
    if kind == "wrong_host":  # otherwise a good request
        return Post("/v1/assess", photo_parts(photo), {"box": "10,20,100,80"}, {"Host": "rebound.example"})
    if kind == "many_images":
        return Post("/v1/assess", photo_parts(photo, MANY_IMAGES), {"box": "10,20,100,80"})
    raise ValueError(f"unknown bad request kind {kind!r}")


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
    bad_fraction: float = 0.0
    requests: int = 0  # good requests
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # good requests not answered 200: lost
    server_errors: int = 0  # 5xx answers to any request, good or bad
    bad_requests: int = 0
    bad_4xx: int = 0
    bad_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> status -> count
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
    # With bad requests mixed in: no good request lost, no 5xx, every bad request answered 4xx.
    mixed_target_met: bool = False
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


@dataclass
class Load:
    """What every client sends: the endpoint, the photos, the pause and the share of bad requests."""

    endpoint: str
    photos: PhotoSource
    size: tuple[int, int]
    think: float
    bad_fraction: float


async def client_loop(url: str, load: Load, cid: int, stop: float, out: list) -> None:
    rng = random.Random(cid)
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        i = n_bad = 0
        while time.monotonic() < stop:
            bad = ""
            if rng.random() < load.bad_fraction:
                bad = BAD_KINDS[(cid + n_bad) % len(BAD_KINDS)]
                n_bad += 1
            t0 = time.monotonic()
            try:
                if bad:
                    req = bad_request(bad, load.photos.data)
                else:
                    path, data = request_parts(load.endpoint, cid, i, *load.size)
                    req = Post(path, photo_parts(load.photos.next()), data)
                r = await http.post(req.path, files=req.files, data=req.data, headers=req.headers)
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            out.append(Sample(t0, time.monotonic() - t0, status, bad))
            i += 1
            if load.think:
                await asyncio.sleep(load.think)


async def run_clients(url: str, load: Load, clients: int, duration: float) -> list[Sample]:
    samples: list[Sample] = []
    stop = time.monotonic() + duration
    await asyncio.gather(*(client_loop(url, load, c, stop, samples) for c in range(clients)))
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    p.add_argument(
        "--bad-fraction", type=float, default=0.0, help="share of malformed /v1/assess requests (0..1)"
    )
    p.add_argument("--max-batch", type=int, default=None, help="server: assess requests batched together")
    p.add_argument("--tag", default="", help="suffix of the JSON result's default file name")
    add_common_options(p, "serve_load")
    p.set_defaults(out=None)  # default: a name from the endpoint, photos, clients and tag
    args = p.parse_args(argv)
    if args.smoke:  # a couple of seconds of load on a few clients
        args.clients, args.duration, args.warmup = min(args.clients, 2), min(args.duration, 2.0), 0.5
    if args.clients < 1 or args.duration <= 0:
        p.error("--clients and --duration must be positive")
    if not 0 <= args.bad_fraction < 1:
        p.error("--bad-fraction must be in [0, 1)")
    return args


def count_samples(rep: Report, samples: list[Sample], wall: float) -> None:
    """Good requests: answered, lost, latency; bad ones: the status each kind got; all: 5xx."""
    good = [s for s in samples if not s.bad]
    lat = sorted(s.latency for s in good if s.status == 200)
    for s in good:
        if s.status != 200:
            key = str(s.status) if s.status else "no answer"
            rep.errors[key] = rep.errors.get(key, 0) + 1
    for s in samples:
        if s.bad:
            by_status = rep.bad_by_kind.setdefault(s.bad, {})
            key = str(s.status) if s.status else "no answer"
            by_status[key] = by_status.get(key, 0) + 1
    rep.requests, rep.ok = len(good), len(lat)
    rep.server_errors = sum(s.status >= 500 for s in samples)
    rep.bad_requests = len(samples) - len(good)
    rep.bad_4xx = sum(s.bad != "" and 400 <= s.status < 500 for s in samples)
    rep.rps = round(len(lat) / wall, 3)
    rep.p50_s = round(percentile(lat, 50), 3)
    rep.p95_s = round(percentile(lat, 95), 3)
    rep.max_s = round(lat[-1], 3) if lat else float("nan")


def measure(args: argparse.Namespace) -> Report:
    from PIL import Image

    # Enough distinct photos for 30 requests/s over the warm-up and the run.
    photos = PhotoSource(args.image, args.photos == "distinct", int(30 * (args.warmup + args.duration)) + 100)
    with Image.open(args.image) as im:
        size = im.size
    load = Load(args.endpoint, photos, size, args.think, args.bad_fraction)
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
            asyncio.run(run_clients(url, load, args.clients, args.warmup))
            rss0 = server.memory_info().rss
            h0 = httpx.get(f"{url}/healthz").json()
            series: list[float] = []
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(server, series, sampling), daemon=True)
            sampler.start()
            cpu0 = server.cpu_times()
            own0 = psutil.Process().cpu_times()
            t0 = time.monotonic()
            samples = asyncio.run(run_clients(url, load, args.clients, args.duration))
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
        bad_fraction=args.bad_fraction,
        warmup_s=args.warmup,
        rss_start_mb=round(rss_start / 2**20, 1),
        rss_before_mb=round(rss0 / 2**20, 1),
        rss_after_mb=round(rss1 / 2**20, 1),
        rss_growth_pct=round(100 * (rss1 - rss0) / rss0, 2),
        rss_series_mb=series,
        batches=batches,
        mean_batch=round(jobs / batches, 2) if batches else 0.0,
        worker_busy_ms_per_request=per_request(h1["busy_s"] - h0["busy_s"], jobs),
        image_cache_hits=cache_count(h0, h1, "hits"),
        image_cache_misses=cache_count(h0, h1, "misses"),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        cpus=os.cpu_count() or 0,
        load_avg_before=[round(v, 2) for v in load_before],
    )
    count_samples(rep, samples, wall)
    rep.server_cpu_ms_per_request = per_request(sum(cpu1[:2]) - sum(cpu0[:2]), rep.ok)
    rep.client_cpu_ms_per_request = per_request(sum(own1[:2]) - sum(own0[:2]), rep.ok)
    rep.target_met = bool(
        rep.clients >= 20
        and not rep.errors
        and not rep.server_errors
        and rep.p95_s <= 2.0
        and rep.rss_growth_pct < 10.0
    )
    rep.mixed_target_met = bool(
        rep.bad_requests and not rep.errors and not rep.server_errors and rep.bad_4xx == rep.bad_requests
    )
    return rep


def print_table(rep: Report) -> None:
    rows = [
        ("model", f"{rep.model} ({rep.model_note})"),
        ("endpoint / image / photos", f"{rep.endpoint} / {rep.image} / {rep.photos}"),
        ("clients / think", f"{rep.clients} / {rep.think_s:g} s"),
        ("duration", f"{rep.duration_s:.1f} s"),
        ("good requests (ok)", f"{rep.requests} ({rep.ok})"),
        ("good requests lost", json.dumps(rep.errors) if rep.errors else "0"),
        ("5xx answers (any request)", str(rep.server_errors)),
    ]
    if rep.bad_fraction:
        rows += [
            (
                f"bad requests ({rep.bad_fraction:g}): 4xx / all",
                f"{rep.bad_4xx} / {rep.bad_requests}",
            ),
            ("bad requests by kind: status", json.dumps(rep.bad_by_kind, sort_keys=True)),
            (
                "mixed-load target (0 good lost, 0 5xx, every bad one 4xx)",
                "met" if rep.mixed_target_met else "NOT met",
            ),
        ]
    rows += [
        ("requests/s (good)", f"{rep.rps:.2f}"),
        ("latency p50 / p95 / max (good)", f"{rep.p50_s:.3f} / {rep.p95_s:.3f} / {rep.max_s:.3f} s"),
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
            "target (20 clients, 0 lost, 0 5xx, p95<=2s, RSS<+10%)",
            ("met" if rep.target_met else "NOT met")
            if rep.endpoint == "assess" and rep.clients >= 20
            else "not applicable (it is set for /v1/assess with 20 clients)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nseagull serve load test")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rep = measure(args)
    print_table(rep)
    if args.save:
        tag = ("_" + args.tag) if args.tag else ""
        out = args.out or RESULTS / f"serve_load_{rep.endpoint}_{rep.photos}_{rep.clients}c{tag}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(rep), indent=2) + "\n")
        print(f"  -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
