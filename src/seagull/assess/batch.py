"""Assess many images: locally with a progress bar, or on a Ray cluster; per-item errors are
reported in the output and never stop the batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cluster import ray_session
from ..errors import ConfigError
from ..imageio import DEFAULT_MAX_PIXELS, SUPPORTED_SUFFIXES, check_image_side, load_image
from ..workers import limit_torch_threads
from .items import assess_item, error_record

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
    it: Any = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="assess", unit="img")
    for p in it:
        yield assess_one(assessor, p, options)


def assess_ray(
    make_assessor: Callable[[], Any],
    paths: Sequence[Path],
    options: ItemOptions,
    address: str | None,
    num_workers: int | None = None,
) -> Iterator[dict[str, Any]]:
    """One actor per worker loads the model once; images are spread round-robin. Paths must be
    readable on every node (a shared filesystem)."""
    with ray_session(address) as ray:
        yield from _run_actors(ray, make_assessor, paths, options, num_workers)


def _run_actors(ray, make_assessor, paths, options, num_workers) -> Iterator[dict[str, Any]]:
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
