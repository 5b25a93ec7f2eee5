"""The `seagull` command: one entry point, one subcommand per job.

Errors of the SeagullError family become one line on stderr and exit code 2; a batch that finished
with per-item failures exits 1. Output into a pipe that closes early (``seagull synth ... | head -1``)
ends the command quietly with exit code 141, as a Unix tool stopped by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys

from . import __version__
from .display import printable
from .errors import SeagullError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Subcommand modules, each with register(subparsers). Import errors of optional parts are reported
# when the subcommand is used, not when the CLI starts.
COMMAND_MODULES = (
    "seagull.synth.commands",
    "seagull.assess.commands",
    "seagull.eval.commands",
    "seagull.train.commands",
    "seagull.serve.commands",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seagull",
        description="No-reference image quality assessment of regions of interest (SEAGULL).",
    )
    p.add_argument("--version", action="version", version=f"seagull {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and mod_name.startswith(e.name):
                continue  # that part of the toolkit is not in this build
            raise
        mod.register(sub)
    return p


# The exit code of a Unix tool stopped by SIGPIPE (128 + 13), what shells report for `yes | head -1`.
EXIT_BROKEN_PIPE = 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit writes nowhere instead
    of failing on the closed pipe (and printing a traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (e.g. captured)
        pass


def _stdout_closed() -> bool:
    """Whether the reader of stdout has gone (a pipe whose other end is closed); True where that
    cannot be told."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe broke (a worker's, a socket's): not the reader of our output
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = getattr(args, "overrides", None)
    if extra and isinstance(overrides, list) and all("=" in e and not e.startswith("-") for e in extra):
        overrides += extra  # key=value overrides placed after other options (seagull train)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except SeagullError as e:
        print(f"seagull {args.command}: error: {printable(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seagull {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
