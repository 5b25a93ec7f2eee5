"""Assess many images: locally (photos decoded in threads while the model assesses a batch of
them, with a progress bar), or on a Ray cluster; per-item errors are reported in the output and never
stop the batch; a JSONL output can be resumed."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cluster import ray_session
from ..errors import ConfigError
from ..imageio import DEFAULT_MAX_PIXELS, SUPPORTED_SUFFIXES, check_image_side, load_image
from ..workers import available_cores, limit_torch_threads, threads_per_worker
from .items import assess_item, error_record, item_json, item_record

# Builds the ROIs of one image: (image array) -> list[Roi]
RoiBuilder = Callable[[Any], list]


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files, folders of images (recursive) and ``.txt`` lists (one path per line)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            # Every entry with an image's suffix but a folder: a symlink loop, a dangling link or a
            # FIFO becomes an item that fails with its reason (never read, never silently left out).
            out += sorted(
                q for q in p.rglob("*") if q.suffix.lower() in SUPPORTED_SUFFIXES and not q.is_dir()
            )
        elif p.suffix.lower() == ".txt" and p.is_file():
            base = p.parent
            try:
                lines = p.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(
                    f"image list {p} cannot be read as UTF-8 text ({e}); one path per line"
                ) from e
            for line in lines:
                if line.strip() and not line.startswith("#"):
                    q = Path(line.strip())
                    out.append(q if q.is_absolute() else base / q)
        else:
            out.append(p)  # missing files are reported per item
    if not out:
        raise ConfigError(f"no images found in {list(map(str, inputs))}")
    return out


@dataclass(frozen=True)
class ItemOptions:
    """What is done with every image: how its ROIs are built, the tasks asked, whether answers come as
    text, and the pixel limit it is loaded under."""

    build_rois: RoiBuilder
    tasks: Sequence[str]
    text: bool
    max_pixels: int = DEFAULT_MAX_PIXELS


def assess_image(assessor: Any, path: Path, options: ItemOptions) -> tuple[dict[str, Any], Any, list]:
    """One image's result record, the image and its ROIs; errors propagate."""
    image = load_image(path, options.max_pixels)
    check_image_side(image, str(path))
    rois = options.build_rois(image)
    return assess_item(assessor, image, rois, str(path), options.tasks, options.text), image, rois


def assess_one(assessor: Any, path: Path, options: ItemOptions) -> dict[str, Any]:
    """One image of a batch: any failure, whatever its class, becomes the item's error record."""
    try:
        return assess_image(assessor, path, options)[0]
    except Exception as e:  # noqa: BLE001 - one bad item must not stop the batch
        return error_record(path, e)


def assess_local(
    assessor: Any, paths: Sequence[Path], options: ItemOptions, progress: bool
) -> Iterator[dict[str, Any]]:
    """One image at a time: load, build its ROIs, assess (the reference :func:`assess_folder` is
    checked against; it needs only ``assessor.assess``)."""
    it: Any = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="assess", unit="img")
    for p in it:
        yield assess_one(assessor, p, options)


# Photos per model pass of a local batch (``--batch-size``): the tower and the LM's prompt prefix run
# once for all of them. 8 photos of up to 2 MP keep a pass within a few hundred MB.
DEFAULT_BATCH_SIZE = 8
# Threads that decode photos (and build their ROIs) ahead of the model. Decoding is PIL and numpy work
# that releases the GIL and costs a fraction of the model's time per photo: one thread keeps ahead.
DECODE_THREADS = 1
# Batches decoded ahead of those the model is on (bounds memory: their pixels and ROIs).
LOOKAHEAD_BATCHES = 2
# At most this many batches are assessed at once on CPU (memory: a batch's tensors each).
MAX_LANES = 4


def default_lanes(assessor: Any) -> int:
    """Batches assessed at once: one per core on CPU (up to :data:`MAX_LANES`), one on an accelerator."""
    device = getattr(assessor, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return 1
    return min(available_cores(), MAX_LANES)


@dataclass
class Decoded:
    """One photo ready for the model (its pixels and ROIs) or the error that stopped it."""

    path: Path
    image: Any = None
    rois: Any = None
    error: Exception | None = None


def decode_item(path: Path, options: ItemOptions) -> Decoded:
    """Load one photo and build its ROIs, as :func:`assess_image` does; any failure is kept."""
    try:
        image = load_image(path, options.max_pixels)
        check_image_side(image, str(path))
        return Decoded(path, image, options.build_rois(image))
    except Exception as e:  # noqa: BLE001 - one bad item must not stop the batch
        return Decoded(path, error=e)


def assess_decoded(assessor: Any, batch: Sequence[Decoded], options: ItemOptions) -> list[dict[str, Any]]:
    """The records of a batch of decoded photos, in order, from one ``assessor.assess_batch`` pass.

    When the pass fails (one photo's text answer off-template, a non-finite score), its photos are
    assessed one at a time, so that the failure is the record of the photo it belongs to."""
    ok = [d for d in batch if d.error is None]
    try:
        images, rois = [d.image for d in ok], [d.rois for d in ok]
        preds = assessor.assess_batch(images, rois, tasks=options.tasks, text=options.text) if ok else []
        records = [item_record(str(d.path), d.image, p) for d, p in zip(ok, preds, strict=True)]
        for item in records:
            item_json(item)  # refuse non-finite numbers, as assess_item does
    except Exception:  # noqa: BLE001 - fall back to one photo at a time
        records = [_assess_alone(assessor, d, options) for d in ok]
    done = iter(records)
    return [error_record(d.path, d.error) if d.error is not None else next(done) for d in batch]


def _assess_alone(assessor: Any, d: Decoded, options: ItemOptions) -> dict[str, Any]:
    try:
        return assess_item(assessor, d.image, d.rois, str(d.path), options.tasks, options.text)
    except Exception as e:  # noqa: BLE001 - one bad item must not stop the batch
        return error_record(d.path, e)


def with_progress(
    records: Generator[dict[str, Any], None, None], total: int, progress: bool
) -> Iterator[dict[str, Any]]:
    """``records`` as they come, counted on a tqdm bar on stderr when ``progress``."""
    if not progress:
        yield from records
        return
    from tqdm import tqdm

    try:
        with tqdm(total=total, desc="assess", unit="img") as bar:
            for record in records:
                yield record
                bar.update(1)
    finally:
        records.close()  # the pools of an unfinished batch end now, not when collected


def assess_folder(
    assessor: Any,
    paths: Sequence[Path],
    options: ItemOptions,
    progress: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    decode_threads: int = DECODE_THREADS,
    lanes: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every photo's record, in input order: the photos of a batch are assessed in one
    ``assessor.assess_batch`` pass while a thread decodes the next ones.

    ``lanes`` batches are assessed at once, each in its own thread, and torch gets cores // lanes
    threads (:func:`seagull.workers.threads_per_worker`), so lanes x threads = the cores (default
    :func:`default_lanes`). A pass is many small steps that a second torch thread mostly waits through:
    on the quiet 2-core VM one lane of 2 threads kept 1.5 cores busy (7.0-7.4 photos/s), two lanes of
    1 thread 1.9 (9.0-9.4 photos/s). The records equal :func:`assess_local`'s (to float rounding)."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1 photo, got {batch_size}")
    records = _pipeline(assessor, paths, options, batch_size, decode_threads, lanes)
    return with_progress(records, len(paths), progress)


def _pipeline(
    assessor: Any,
    paths: Sequence[Path],
    options: ItemOptions,
    batch_size: int,
    decode_threads: int,
    lanes: int | None,
) -> Generator[dict[str, Any], None, None]:
    import torch

    lanes = default_lanes(assessor) if lanes is None else max(1, lanes)
    threads = torch.get_num_threads()  # given back at the end
    limit_torch_threads(threads_per_worker(lanes))
    decoders = ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="seagull-decode")
    model = ThreadPoolExecutor(lanes, thread_name_prefix="seagull-assess")
    pending: deque[Future[Decoded]] = deque()
    running: deque[Future[list[dict[str, Any]]]] = deque()
    todo = iter(paths)

    def read_ahead() -> None:
        while len(pending) < (LOOKAHEAD_BATCHES + lanes) * batch_size:
            path = next(todo, None)
            if path is None:
                return
            pending.append(decoders.submit(decode_item, path, options))

    try:
        read_ahead()
        while pending or running:
            while pending and len(running) < lanes:
                batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
                running.append(model.submit(assess_decoded, assessor, batch, options))
                read_ahead()  # the next photos decode while the model runs these batches
            yield from running.popleft().result()
    finally:
        for pool in (decoders, model):
            pool.shutdown(wait=True, cancel_futures=True)
        limit_torch_threads(threads)


def resume_output(output: Path) -> set[str]:
    """The images an earlier run already wrote to the JSONL ``output`` (as they were named: the same
    command from the same folder finds them). A last line cut off by a kill is removed from the file, so
    that appending goes on from a whole line; that image is assessed again."""
    try:
        data = output.read_bytes()
    except FileNotFoundError:
        return set()
    except OSError as e:
        raise ConfigError(f"--output {output} cannot be read to resume ({e.strerror})") from e
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(output, "r+b") as f:
            f.truncate(end)
    done: set[str] = set()
    for n, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            done.add(str(record["image"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"--output {output} line {n} is not a record of `seagull assess` ({e}); resume only a "
                "file this command wrote, or name a new --output"
            ) from e
    return done


def assess_ray(
    make_assessor: Callable[[], Any],
    paths: Sequence[Path],
    options: ItemOptions,
    address: str | None,
    num_workers: int | None = None,
    progress: bool = False,
) -> Iterator[dict[str, Any]]:
    """One actor per worker loads the model once; images are spread round-robin. Paths must be
    readable on every node (a shared filesystem)."""
    with ray_session(address) as ray:
        records = _run_actors(ray, make_assessor, paths, options, num_workers)
        yield from with_progress(records, len(paths), progress)


def _run_actors(ray, make_assessor, paths, options, num_workers) -> Generator[dict[str, Any], None, None]:
    @ray.remote(num_cpus=1)
    class Worker:
        def __init__(self) -> None:
            limit_torch_threads(1)  # one CPU per actor: actors divide the cores
            self.assessor = make_assessor()

        def run(self, path: str) -> dict[str, Any]:
            return assess_one(self.assessor, Path(path), options)

    n = num_workers or max(1, int(ray.available_resources().get("CPU", 1)))
    workers = [Worker.remote() for _ in range(min(n, len(paths)))]
    refs = [workers[i % len(workers)].run.remote(str(p)) for i, p in enumerate(paths)]
    for p, r in zip(paths, refs, strict=True):  # keep the input order in the output
        try:
            yield ray.get(r)
        except Exception as e:  # noqa: BLE001 - a lost worker fails its items, not the batch
            yield error_record(p, e)
