"""Run the same per-reference function on a Ray cluster (or a local Ray runtime).

Workers write images and shards to ``cfg.out`` themselves, so on a multi-machine cluster the
output folder must be on a filesystem every node sees (NFS, a mounted bucket, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..cluster import ray_session
from ..references import Reference
from .pipeline import ItemResult, SynthConfig, process_reference


def run_ray(
    todo: list[Reference], cfg: SynthConfig, address: str | None, num_cpus: int | None = None
) -> Iterator[ItemResult]:
    with ray_session(address, num_cpus) as ray:
        remote = ray.remote(num_cpus=1)(process_reference)
        pending = [remote.remote(ref, cfg) for ref in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
