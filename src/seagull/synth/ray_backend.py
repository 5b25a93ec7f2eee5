"""Run the same per-reference function on a Ray cluster (or a local Ray runtime).

Workers write images and shards to ``cfg.out`` themselves, so on a multi-machine cluster the
output folder must be on a filesystem every node sees (NFS, a mounted bucket, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ConfigError
from .pipeline import ItemResult, Reference, SynthConfig, process_reference


def run_ray(
    todo: list[Reference], cfg: SynthConfig, address: str | None, num_cpus: int | None = None
) -> Iterator[ItemResult]:
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--ray needs the 'ray' package: pip install 'seagull[dist]'") from e
    started_here = not ray.is_initialized()
    if started_here:
        if address and address != "local":
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(process_reference)
    try:
        pending = [remote.remote(ref, cfg) for ref in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()
