"""Imported at start-up by every Python process a test starts with this folder on ``PYTHONPATH`` (a
``seagull synth`` run and its worker processes, whatever their start method), so that the test can
kill the run at a known point instead of guessing one with a timer (see ``tests/helpers.py``).

With ``SEAGULL_TEST_HOLD_DIR`` set, a process that has just written its ``SEAGULL_TEST_HOLD_AFTER``-th
dataset shard (``shards/*.jsonl``, written atomically through :func:`os.replace`) stops there: it
writes a file named after its pid into that folder, then waits until it is killed.
"""

import os

_HOLD_DIR = os.environ.get("SEAGULL_TEST_HOLD_DIR")

if _HOLD_DIR:
    import threading

    _AFTER = int(os.environ.get("SEAGULL_TEST_HOLD_AFTER", "1"))
    _real_replace = os.replace
    _written: list[str] = []

    def _replace_then_hold(src, dst, *args, **kwargs):
        _real_replace(src, dst, *args, **kwargs)
        path = os.fspath(dst)
        if os.path.basename(os.path.dirname(path)) == "shards" and path.endswith(".jsonl"):
            _written.append(os.path.basename(path))
            if len(_written) == _AFTER:
                with open(os.path.join(_HOLD_DIR, str(os.getpid())), "w") as f:
                    f.write("\n".join(_written) + "\n")
                threading.Event().wait()  # until the test kills this process

    os.replace = _replace_then_hold
