"""Joining or starting a Ray runtime, shared by every command that can run on a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ConfigError


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module connected to ``address`` (``None``/``"local"``: a local runtime).

    A runtime started here is shut down on exit; one that was already running is left alone.
    """
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--ray needs the 'ray' package: pip install 'seagull[dist]'") from e
    started = not ray.is_initialized()
    if started:
        if address and address != "local":
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
