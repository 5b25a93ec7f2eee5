"""`seagull serve`: the REST API and web page on one port (loopback unless told otherwise)."""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

from ..errors import ConfigError
from ..options import nonnegative_float, port, positive_float, positive_int
from .limits import Limits

# Addresses that only this machine can reach.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts_option(text: str) -> tuple[str, ...]:
    """``--allowed-hosts a,b``: host names without ports (``*.example.org``, or ``*`` for any)."""
    from .hosts import normalise_hosts

    try:
        return normalise_hosts(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def default_allowed_hosts(bind: str) -> tuple[str, ...]:
    """The bound address and this machine's loopback names."""
    from .hosts import DEFAULT_ALLOWED_HOSTS, normalise_hosts

    return normalise_hosts((bind, *DEFAULT_ALLOWED_HOSTS))


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX=n`` would) unless the user set that variable.

    Each request thread otherwise gets its own arena, and RSS climbs in steps under load without a
    leak; the load benchmark measured +6.6 % RSS in 30 s at 20 clients by default and +0.5 % with 2.
    Must run before the server starts its threads. A no-op off glibc.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-8, n))  # -8 = M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def keep_openmp_threads_spinning(spin_count: int = 1_000_000) -> None:
    """Let OpenMP worker threads spin a while between parallel regions instead of sleeping at once
    (as ``OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=1000000`` would), unless the user set either variable.

    Measured: the model ran about 20 % slower on the server's worker thread than on a main thread
    (the same batch, 2 cores), and this setting removed most of the gap (the load benchmark's model time
    per request went 92 -> 77 ms). The likely cause: with more threads than cores, GNU OpenMP throttles
    its spin-wait, so each of the model's many small parallel ops waits for sleeping threads to wake.
    The spinning stops after ``spin_count`` turns (a few ms), so an idle server does not burn CPU.
    Must run before torch is imported.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
    os.environ["GOMP_SPINCOUNT"] = str(spin_count)


def cmd_serve(args: argparse.Namespace) -> int:
    keep_openmp_threads_spinning()
    try:
        import uvicorn

        from .app import create_app
    except ImportError as e:
        print(f"seagull serve needs the serve extra: pip install 'seagull[serve]' ({e})", file=sys.stderr)
        return 2
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_rois=args.max_rois,
        request_timeout_s=args.timeout,
        queue_size=args.queue_size,
        max_batch=args.max_batch,
        image_cache_mb=args.image_cache_mb,
    )
    allowed = args.allowed_hosts or default_allowed_hosts(args.host)
    if args.host not in LOOPBACK:
        print(
            f"seagull serve: listening on {args.host}: the API has no authentication; "
            "put it behind a proxy that has",
            file=sys.stderr,
        )
        if args.allowed_hosts is None:
            print(
                f"seagull serve: answering only requests for the hosts {', '.join(allowed)}; name the "
                "others clients use with --allowed-hosts",
                file=sys.stderr,
            )
    limit_malloc_arenas()
    print("seagull serve: loading the model ...", file=sys.stderr)
    app = create_app(args.model, limits, sam=args.sam, sam_type=args.sam_type, allowed_hosts=allowed)
    print(
        f"seagull serve: page http://{args.host}:{args.port}/  API docs http://{args.host}:{args.port}/docs"
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=1)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    d = Limits()
    p = sub.add_parser("serve", help="serve the REST API and the web page (click-to-segment, region map)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=port, default=8000, help="port to bind (0 to 65535; default 8000)")
    p.add_argument(
        "--allowed-hosts",
        type=allowed_hosts_option,
        metavar="HOSTS",
        help="comma-separated host names the Host header may name, without ports ('*.example.org' for "
        "subdomains, '*' for any); other requests get 400 (default: the --host address, localhost, "
        "127.0.0.1, ::1)",
    )
    p.add_argument("--model", help="model folder (default: the shipped seagull-tiny)")
    p.add_argument("--sam", metavar="CHECKPOINT", help="segment point/box prompts with this SAM checkpoint")
    p.add_argument("--sam-type", default="vit_b", help="SAM model type of the checkpoint (default vit_b)")
    p.add_argument(
        "--max-upload-mb", type=positive_float, default=d.max_upload_bytes / 2**20, help="request body limit"
    )
    p.add_argument("--max-pixels", type=positive_int, default=d.max_pixels, help="image pixel limit")
    p.add_argument("--max-rois", type=positive_int, default=d.max_rois, help="ROIs per request")
    p.add_argument(
        "--timeout", type=positive_float, default=d.request_timeout_s, help="request timeout in seconds"
    )
    p.add_argument(
        "--queue-size", type=positive_int, default=d.queue_size, help="requests waiting for the model"
    )
    p.add_argument(
        "--max-batch", type=positive_int, default=d.max_batch, help="waiting requests run as one batch"
    )
    p.add_argument(
        "--image-cache-mb",
        type=nonnegative_float,
        default=d.image_cache_mb,
        help="memory for the encodings of recent photos, reused when a photo comes again (0 = off)",
    )
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve)
