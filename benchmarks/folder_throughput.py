"""Folder throughput: photos per second of `seagull assess FOLDER --output x.jsonl` (the whole photo,
quality only) against the one-at-a-time loop, NIQE and BRISQUE on the same photos in the same run, and
on Ray with 1 and 2 CPUs.

The folder is N photos of mixed sizes (0.1-2 MP, uniform in megapixels, JPEG quality 90) made from the
example photo, the Kodak and the BSDS500 photos under --data, written to a temporary folder and removed
at the end; --photos DIR reads a folder instead. Modes, each over every photo:

* batch: what the command runs, :func:`seagull.assess.batch.assess_folder` (photos decoded in a thread
  while the model assesses a batch of --batch-size photos in one pass), records written as JSONL;
* loop: one photo at a time, load, ROI, ``Assessor.assess`` (:func:`~seagull.assess.batch.assess_local`,
  what the command did before), records written as JSONL;
* niqe, brisque: load and score each photo (``seagull.metrics.nr``), one at a time;
* ray 1 CPU, ray 2 CPUs (--ray, or --ray-only without the modes above: a bigger job in the same time):
  ``seagull assess --ray`` on a local runtime started with that many CPUs (one actor per CPU, one torch
  thread each); start-up (the runtime; the actors' model loads until the first record) is reported apart
  from the steady rate.

Scores of the batch and of Ray are checked against the loop's (with --ray-only, Ray's 2 CPUs against its
1 CPU): max |difference|. The load average is recorded before and after each mode: on a shared machine
the numbers move with it. ``--smoke``: 6 small photos, no Ray.

    python benchmarks/folder_throughput.py --n 1000 [--ray | --ray-only] [--photos DIR] [--smoke] [--save]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import EXAMPLES, REPO, add_common_options, save_result
from seagull.workers import wait_passively

OMP_PASSIVE = wait_passively()  # as the command does, before torch loads

from PIL import Image  # noqa: E402

from seagull.assess.batch import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    ItemOptions,
    assess_folder,
    assess_local,
    assess_ray,
    default_lanes,
    expand_inputs,
)
from seagull.assess.items import item_json  # noqa: E402
from seagull.imageio import load_image  # noqa: E402
from seagull.roi import whole_image  # noqa: E402

TASKS = ("quality",)
MP_RANGE = (0.1, 2.0)


def whole(image: np.ndarray) -> list:
    return [whole_image(image.shape)]


OPTIONS = ItemOptions(whole, TASKS, False)


def sources(data: Path) -> list[Path]:
    """The photos the folder is made from: the example photo, Kodak, BSDS500 (what is there)."""
    found = [EXAMPLES / "coffee.jpg"]
    for sub in ("kodak/images", "bsds500/images"):
        if (data / sub).is_dir():
            found += expand_inputs([data / sub])
    return found


def make_folder(folder: Path, n: int, data: Path, mp_range: tuple[float, float], seed: int = 0) -> None:
    """``n`` JPEGs resized from the source photos to sizes uniform in megapixels within ``mp_range``."""
    rng = np.random.default_rng(seed)
    src = sources(data)
    for k in range(n):
        with Image.open(src[k % len(src)]) as im:
            im = im.convert("RGB")
            s = (rng.uniform(*mp_range) * 1e6 / (im.width * im.height)) ** 0.5
            size = (max(16, round(im.width * s)), max(16, round(im.height * s)))
            im.resize(size, Image.Resampling.BICUBIC).save(folder / f"photo_{k:05d}.jpg", quality=90)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(name: str, run, n: int) -> tuple[dict, list]:
    """Run ``run()`` (-> its results), timed, with the load average before and after."""
    before = load()
    t, cpu = time.perf_counter(), time.process_time()
    out = run()
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    row = {
        "mode": name,
        "photos": n,
        "wall_s": round(wall, 2),
        "photos_per_s": round(n / wall, 3),
        # CPU seconds of this process (all its threads) per photo: the work, whatever the load
        "cpu_s_per_photo": round(cpu / n, 4),
        "load_before": before,
        "load_after": load(),
    }
    print(
        f"  {name}: {row['photos_per_s']} photos/s ({wall:.1f} s, load {before} -> {row['load_after']})",
        flush=True,
    )
    return row, out


def write_jsonl(records, path: Path) -> list[dict]:
    """Write records as the command does (one line each, flushed) and return them."""
    out = []
    with open(path, "w", encoding="utf-8") as f:
        for item in records:
            f.write(item_json(item) + "\n")
            f.flush()
            out.append(item)
    return out


def scores(records: list[dict]) -> dict[str, float]:
    return {r["image"]: r["rois"][0]["quality"] for r in records if "error" not in r}


def max_diff(a: dict[str, float], b: dict[str, float]) -> float:
    if a.keys() != b.keys():
        raise RuntimeError(f"different photos assessed: {len(a)} vs {len(b)}")
    return max(abs(a[k] - b[k]) for k in a)


def run_metric(name: str, paths: list[Path]) -> list[float]:
    from seagull.metrics.nr import brisque, niqe

    fn = {"niqe": niqe, "brisque": brisque}[name]
    return [fn(load_image(p)) for p in paths]


def run_ray(paths: list[Path], num_cpus: int, model: str | None) -> dict:
    """``seagull assess --ray`` on a local runtime of ``num_cpus`` CPUs: the runtime's start, the time to
    the first record (actors start and load the model), the rest."""
    from functools import partial

    from seagull.assess.commands import make_assessor
    from seagull.cluster import ray_session

    before = load()
    t0 = time.perf_counter()
    with ray_session(None, num_cpus):
        t1 = time.perf_counter()
        records, first = [], None
        for item in assess_ray(partial(make_assessor, model), paths, OPTIONS, None):
            records.append(item)
            if first is None:
                first = time.perf_counter()
        t2 = time.perf_counter()
    n = len(paths)
    row = {
        "mode": f"ray {num_cpus} CPU{'s' if num_cpus > 1 else ''}",
        "photos": n,
        "wall_s": round(t2 - t0, 2),
        "photos_per_s": round(n / (t2 - t0), 3),
        "runtime_start_s": round(t1 - t0, 2),
        "to_first_record_s": round(first - t1, 2),
        "startup_share": round((first - t0) / (t2 - t0), 3),
        "steady_photos_per_s": round((n - 1) / (t2 - first), 3) if n > 1 else None,
        "load_before": before,
        "load_after": load(),
        "records": records,
    }
    print(
        f"  {row['mode']}: {row['photos_per_s']} photos/s ({row['wall_s']} s; start-up "
        f"{row['runtime_start_s']} + {row['to_first_record_s']} s, load {before} -> {row['load_after']})",
        flush=True,
    )
    return row


def local_modes(paths: list[Path], a: argparse.Namespace, tmp: Path) -> tuple[list[dict], dict]:
    """The batch, the loop, NIQE and BRISQUE over ``paths``; their rows and the loop's scores."""
    import torch

    from seagull.assess.commands import make_assessor
    from seagull.workers import available_cores, threads_per_worker

    assessor = make_assessor(a.model)
    list(assess_local(assessor, paths[:1], OPTIONS, False))  # warm-up: first-call costs, not timed
    batch_row, batch = timed(
        f"batch of {a.batch_size}",
        lambda: write_jsonl(
            assess_folder(assessor, paths, OPTIONS, batch_size=a.batch_size, lanes=a.lanes),
            tmp / "batch.jsonl",
        ),
        len(paths),
    )
    batch_row["lanes"] = lanes = a.lanes or default_lanes(assessor)
    batch_row["torch_threads"] = threads_per_worker(lanes)  # what the batch ran with
    torch.set_num_threads(available_cores())  # the loop as the command ran it: torch's default
    loop_row, loop = timed(
        "one-at-a-time loop",
        lambda: write_jsonl(assess_local(assessor, paths, OPTIONS, False), tmp / "loop.jsonl"),
        len(paths),
    )
    loop_row["torch_threads"] = torch.get_num_threads()
    rows = [batch_row, loop_row]
    for metric in ("niqe", "brisque"):
        rows.append(timed(metric.upper(), lambda m=metric: run_metric(m, paths), len(paths))[0])
    batch_row["max_abs_diff"] = max_diff(scores(batch), scores(loop))
    batch_row["failed"] = sum("error" in r for r in batch)
    return rows, scores(loop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="photos in the generated folder")
    ap.add_argument("--photos", type=Path, help="assess this folder instead of a generated one")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    ap.add_argument("--lanes", type=int, help="batches assessed at once (default: one per core, up to 4)")
    ap.add_argument("--ray", action="store_true", help="also Ray with 1 and 2 CPUs")
    ap.add_argument(
        "--ray-only", action="store_true", help="only Ray with 1 and 2 CPUs (a bigger job in the same time)"
    )
    ap.add_argument("--model", help="model folder (default: the shipped one)")
    add_common_options(ap, "folder_throughput")
    a = ap.parse_args()
    mp_range = MP_RANGE
    if a.smoke:
        a.n, a.ray, a.ray_only, mp_range = 6, False, False, (0.02, 0.06)

    import torch

    tmp = Path(tempfile.mkdtemp(prefix="folder-bench-"))
    try:
        if a.photos:
            paths = expand_inputs([a.photos])
        else:
            (tmp / "photos").mkdir()
            t = time.perf_counter()
            make_folder(tmp / "photos", a.n, a.data, mp_range)
            paths = expand_inputs([tmp / "photos"])
            print(f"made {len(paths)} photos in {time.perf_counter() - t:.1f} s", flush=True)
        sizes = []
        for p in paths:
            with Image.open(p) as im:
                sizes.append(im.width * im.height / 1e6)
        n = len(paths)
        print(f"folder of {n} photos, {min(sizes):.2f}-{max(sizes):.2f} MP (mean {np.mean(sizes):.2f})")
        rows: list[dict] = []
        loop = None
        if not a.ray_only:
            rows, loop = local_modes(paths, a, tmp)
        reference = loop
        if a.ray or a.ray_only:
            for cpus in (1, 2):
                row = run_ray(paths, cpus, a.model)
                got = scores(row.pop("records"))
                if reference is None:
                    reference = got  # --ray-only: Ray with 2 CPUs is checked against 1 CPU
                else:
                    row["max_abs_diff"] = max_diff(got, reference)
                rows.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    by = {r["mode"]: r for r in rows}
    base_mode = "ray 1 CPU" if a.ray_only else "one-at-a-time loop"
    base = by[base_mode]["photos_per_s"]
    for r in rows:
        r["vs_base"] = round(r["photos_per_s"] / base, 2)
    ray_scaling = None
    if a.ray or a.ray_only:
        one, two = by["ray 1 CPU"], by["ray 2 CPUs"]
        ray_scaling = {
            "wall": round(two["photos_per_s"] / one["photos_per_s"], 2),
            "steady": round(two["steady_photos_per_s"] / one["steady_photos_per_s"], 2),
        }

    print()
    print(
        f"folder throughput: {n} photos ({np.mean(sizes):.2f} MP mean), whole photo, quality only; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'mode':<22}{'photos/s':>10}{'vs ' + base_mode:>22}{'wall s':>9}{'CPU s/photo':>13}"
        f"{'threads':>9}{'load':>13}{'max |diff|':>12}   start-up"
    )
    for r in rows:
        diff = r.get("max_abs_diff")
        start = ""
        if "runtime_start_s" in r:
            start = (
                f"{r['runtime_start_s']} s runtime + {r['to_first_record_s']} s to the first record "
                f"({100 * r['startup_share']:.1f} % of the run); steady {r['steady_photos_per_s']} photos/s"
            )
        print(
            f"{r['mode']:<22}{r['photos_per_s']:>10.2f}{r['vs_base']:>22.2f}{r['wall_s']:>9.1f}"
            f"{r.get('cpu_s_per_photo', ''):>13}{r.get('torch_threads', ''):>9}"
            f"{r['load_before']:>6.1f} ->{r['load_after']:>4.1f}{'' if diff is None else f'{diff:.1e}':>12}   {start}"
        )
    if ray_scaling:
        print(f"Ray 2 CPUs vs 1: {ray_scaling['wall']}x over the whole run, {ray_scaling['steady']}x steady")
    save_result(
        a,
        {
            "benchmark": "folder_throughput",
            "command": "python benchmarks/folder_throughput.py " + " ".join(sys.argv[1:]),
            "photos": n,
            "megapixels": {
                "min": round(min(sizes), 3),
                "mean": round(float(np.mean(sizes)), 3),
                "max": round(max(sizes), 3),
            },
            "generated": not a.photos,
            "tasks": list(TASKS),
            "roi": "whole photo",
            "batch_size": a.batch_size,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "omp_passive_applied": OMP_PASSIVE,
            "baseline": base_mode,  # vs_base, and what max_abs_diff (of the scores) is against
            "rows": rows,
            "ray_scaling_2_vs_1": ray_scaling,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            "load_average_at_end": list(os.getloadavg()),
        },
    )


if __name__ == "__main__":
    main()
