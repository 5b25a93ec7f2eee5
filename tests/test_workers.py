"""Worker pools divide the cores: workers x torch threads <= cores, in every pool."""

from __future__ import annotations

import pytest
import torch

from seagull import workers as W


@pytest.mark.parametrize(
    ("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (5, 16, 3), (0, 4, 4)]
)
def test_threads_per_worker_never_oversubscribes(workers, cores, threads):
    got = W.threads_per_worker(workers, cores)
    assert got == threads
    assert max(1, workers) * got <= cores or got == 1


def test_available_cores_follows_the_affinity():
    import os

    if hasattr(os, "sched_getaffinity"):
        assert W.available_cores() == len(os.sched_getaffinity(0))
    assert W.available_cores() >= 1


def test_synth_pool_workers_run_with_their_share(tmp_path, monkeypatch):
    """The synthesis runner hands each of its workers cores // workers threads."""
    from seagull.synth import pipeline, runner

    seen: list[int] = []

    def fake_process(ref, cfg):
        seen.append(cfg.threads)
        return pipeline.ItemResult(ref)

    monkeypatch.setattr(runner, "process_reference", fake_process)
    monkeypatch.setattr(runner, "threads_per_worker", lambda n: W.threads_per_worker(n, cores=4))
    cfg = pipeline.SynthConfig(refs=tmp_path, out=tmp_path / "out")
    list(runner._run_local(["a", "b"], cfg, workers=1))
    assert seen == [4, 4]


def test_precompute_worker_limits_its_threads(monkeypatch):
    from seagull.train import precompute

    calls: list[int] = []
    monkeypatch.setattr(precompute, "limit_torch_threads", calls.append)
    monkeypatch.setattr(precompute, "threads_per_worker", lambda n: W.threads_per_worker(n, cores=8))
    monkeypatch.setattr(precompute, "die_with_parent", lambda owner: None)
    monkeypatch.setattr(
        precompute, "build_for_training", lambda *a: (_ for _ in ()).throw(RuntimeError("stop"))
    )
    monkeypatch.setattr(precompute, "load_tokenizer_for", lambda cfg: None)

    class Cfg:
        seed = 0

    with pytest.raises(RuntimeError, match="stop"):
        precompute._work(Cfg(), 0, 2, None, 0)
    assert calls == [4]


def test_limit_torch_threads_sets_this_process():
    before = torch.get_num_threads()
    try:
        W.limit_torch_threads(1)
        assert torch.get_num_threads() == 1
        assert float(torch.ones(4).sum()) == 4.0  # still computes
    finally:
        torch.set_num_threads(before)


def _policy_after(code: str, env_policy: str | None) -> list[str]:
    """Run ``code`` then wait_passively() in a fresh interpreter: (its answer, the policy then set)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy:
        env["OMP_WAIT_POLICY"] = env_policy
    script = f"{code}\nimport os\nfrom seagull.workers import wait_passively\nprint(wait_passively(), os.environ.get('OMP_WAIT_POLICY'))"
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return run.stdout.split()


def test_wait_passively_before_torch_and_never_over_the_users_choice():
    assert _policy_after("", None) == ["True", "PASSIVE"]
    assert _policy_after("", "ACTIVE") == ["False", "ACTIVE"]
    # too late once torch is loaded: nothing is set, and it says so
    assert _policy_after("import torch", None) == ["False", "None"]
