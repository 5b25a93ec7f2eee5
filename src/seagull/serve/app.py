"""The FastAPI application: REST endpoints, the web page, limits and error mapping.

``create_app(model, limits)`` loads the model once and starts one inference thread
(:mod:`seagull.serve.worker`). Image decoding, ROI parsing and the weight-free segmentation run in the
request thread pool; only the model runs on the inference thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import AnswerParseError, ModelError, RoiError, SeagullError
from ..roi import Roi, mask_to_rle
from ..schema import TASKS
from .bodylimit import BodyLimitMiddleware
from .inputs import (
    RequestTooLarge,
    TooManyRois,
    Upload,
    build_specs,
    decode_image,
    parse_numbers,
    parse_tasks,
    resolve_rois,
    safe_name,
)
from .limits import Limits
from .segment import Segmenter, downscale, outline_rgba, png_base64
from .worker import InferenceWorker, JobTimeoutError, QueueFullError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger("seagull.serve")
STATIC_DIR = Path(__file__).resolve().parent / "static"
MAP_TASKS = ("quality", "importance")


def _load_assessor(model: Any, image_cache_mb: float) -> tuple[Any, str]:
    from ..assess import Assessor

    if isinstance(model, Assessor):
        return model, getattr(model, "model_id", "custom")
    if model is None:
        return Assessor(image_cache_mb=image_cache_mb), "default"
    if isinstance(model, (str, Path)):
        return Assessor(model, image_cache_mb=image_cache_mb), Path(model).name or "model"
    raise ModelError(f"model must be None, a model folder or an Assessor, got {type(model).__name__}")


def _cache_info(assessor: Any) -> dict[str, Any] | None:
    cache = getattr(assessor, "image_cache", None)
    if cache is None:
        return None
    return {
        "entries": len(cache),
        "mb": round(cache.nbytes / 2**20, 1),
        "max_mb": round(cache.max_bytes / 2**20, 1),
        "hits": cache.hits,
        "misses": cache.misses,
    }


def _model_info(assessor: Any, model_id: str) -> dict[str, Any]:
    cfg = assessor.model.config
    vision = getattr(cfg, "vision", {}) or {}
    text = cfg.text_pretrained_config() if hasattr(cfg, "text_pretrained_config") else None
    return {
        "id": model_id,
        "default": model_id == "default",
        "parameters": int(sum(p.numel() for p in assessor.model.parameters())),
        "vision": {k: vision.get(k) for k in ("kind", "name", "image_size") if k in vision},
        "language_model": {
            "type": getattr(text, "model_type", None),
            "layers": getattr(text, "num_hidden_layers", None),
            "hidden_size": getattr(text, "hidden_size", None),
        },
        "device": str(assessor.device),
        "tasks": list(TASKS),
    }


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "error": kind}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestTooLarge)
    async def _too_large(_: Request, e: RequestTooLarge) -> JSONResponse:
        return _error(413, str(e), "PayloadTooLarge")

    @app.exception_handler(SeagullError)
    async def _seagull(_: Request, e: SeagullError) -> JSONResponse:
        if isinstance(e, (ModelError, AnswerParseError)):
            # The input was fine; the model failed. Say so instead of blaming the client.
            log.error("model failure: %s", e)
            return _error(500, f"the model failed on this request: {e}", type(e).__name__)
        return _error(422, str(e), type(e).__name__)

    @app.exception_handler(QueueFullError)
    async def _busy(_: Request, e: QueueFullError) -> JSONResponse:
        return _error(503, str(e), "Busy", {"Retry-After": "1"})

    @app.exception_handler(JobTimeoutError)
    async def _timeout(_: Request, e: JobTimeoutError) -> JSONResponse:
        return _error(504, str(e), "Timeout")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected server error")
        return _error(500, f"internal server error ({type(e).__name__}); see the server log", "Internal")


async def _read(upload: UploadFile | None, default: str = "upload") -> Upload:
    if upload is None:
        return Upload(default, b"")
    return Upload(safe_name(upload.filename, default), await upload.read())


def create_app(
    model: Any = None,
    limits: Limits | None = None,
    sam: str | Path | None = None,
    sam_type: str = "vit_b",
) -> FastAPI:
    """The server for ``model`` (None: the shipped default; a model folder; or an Assessor)."""
    limits = limits or Limits()
    assessor, model_id = _load_assessor(model, limits.image_cache_mb)
    segmenter = Segmenter(sam, sam_type, limits.work_side)
    worker = InferenceWorker(assessor, limits.queue_size, limits.max_batch)
    info = _model_info(assessor, model_id)
    started = time.time()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        worker.start()
        yield
        await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="seagull",
        version=__version__,
        description=(
            "No-reference quality assessment of regions of interest (SEAGULL). Upload a photo with "
            "regions (boxes, points, COCO RLE, polygons or mask images); get each region's quality, "
            "importance and distortions. The web page is at `/`."
        ),
        lifespan=lifespan,
    )
    app.state.worker, app.state.limits, app.state.segmenter = worker, limits, segmenter
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_upload_bytes)
    _install_error_handlers(app)
    worker.start()

    async def run_assess(image: np.ndarray, rois: Sequence[Roi], tasks: Sequence[str], text: bool, t0: float):
        remaining = max(0.1, limits.request_timeout_s - (time.monotonic() - t0))
        fut = worker.submit_assess(image, rois, tasks, text, remaining)
        return await worker.wait(fut, remaining, limits.request_timeout_s)

    # ------------------------------------------------------------------ endpoints

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["service"])
    async def healthz() -> JSONResponse:
        ok = worker.alive
        body = {
            "status": "ok" if ok else "inference worker stopped",
            "model": model_id,
            "queue": worker.depth,
            "queue_size": limits.queue_size,
            "running": worker.stats.running,
            "jobs": worker.stats.jobs,
            "batches": worker.stats.batches,
            "busy_s": round(worker.stats.busy_s, 3),
            "image_cache": _cache_info(assessor),
            "uptime_s": round(time.time() - started, 1),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/models", tags=["service"])
    async def models() -> dict[str, Any]:
        return {"models": [info], "segmenter": segmenter.name, "limits": limits.to_dict()}

    @app.post("/v1/assess", tags=["assess"])
    async def assess(
        image: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, TIFF, BMP)")],
        rois: Annotated[
            str | None,
            Form(
                description='JSON list of ROIs: {"box": [x, y, w, h], "format": "xywh"|"xyxy"}, '
                '{"point": [x, y]}, {"rle": {"size": [h, w], "counts": ...}}, {"polygon": [[x1, y1, ...]]}, '
                '{"mask": "<file name or index of an uploaded masks part>"}; each may have a "name"'
            ),
        ] = None,
        box: Annotated[list[str], Form(description="a box x,y,w,h (repeatable)")] = [],  # noqa: B006
        point: Annotated[list[str], Form(description="a point x,y, segmented (repeatable)")] = [],  # noqa: B006
        box_format: Annotated[Literal["xywh", "xyxy"], Form()] = "xywh",
        masks: Annotated[
            list[UploadFile], File(description="mask images at the photo's size, non-zero = inside")
        ] = [],  # noqa: B006
        tasks: Annotated[str, Form(description="comma-separated subset of quality,importance,distortion")] = (
            ",".join(TASKS)
        ),
        text: Annotated[bool, Form(description="also generate the model's text answers (slower)")] = False,
    ) -> dict[str, Any]:
        """The same JSON as ``seagull assess --json``; no ROI means the whole image."""
        t0 = time.monotonic()
        up = await _read(image, "image")
        mask_ups = [await _read(m, f"mask{i}") for i, m in enumerate(masks)]
        task_list = parse_tasks(tasks)

        def prepare() -> tuple[np.ndarray, list[Roi]]:
            arr = decode_image(up, limits)
            specs = build_specs(rois, box, point, box_format, mask_ups, arr.shape[:2], limits)
            return arr, resolve_rois(arr, specs, segmenter.point)

        arr, roi_list = await run_in_threadpool(prepare)
        results = await run_assess(arr, roi_list, task_list, text, t0)
        return {
            "image": up.filename,
            "width": int(arr.shape[1]),
            "height": int(arr.shape[0]),
            "rois": [r.to_dict() for r in results],
        }

    @app.post("/v1/segment", tags=["assess"])
    async def segment(
        image: Annotated[UploadFile, File(description="the photo")],
        point: Annotated[str | None, Form(description="x,y: segment the region under this point")] = None,
        box: Annotated[str | None, Form(description="x,y,w,h: segment the object in this box")] = None,
    ) -> dict[str, Any]:
        """A point or box prompt -> the mask (COCO RLE at image size) and a transparent outline PNG."""
        if (point is None) == (box is None):
            raise RoiError("give exactly one prompt: either 'point' (x,y) or 'box' (x,y,w,h)")
        up = await _read(image, "image")

        def run() -> dict[str, Any]:
            arr = decode_image(up, limits)
            if point is not None:
                xy = parse_numbers(point, 2, "point")
                m, prompt, method = segmenter.point(arr, xy), {"point": xy}, segmenter.methods["point"]
            else:
                b = parse_numbers(box, 4, "box")
                m, prompt, method = segmenter.box(arr, b), {"box": b}, segmenter.methods["box"]
            roi = Roi(m, "segment", method)
            return {
                "image": up.filename,
                "width": int(arr.shape[1]),
                "height": int(arr.shape[0]),
                "prompt": prompt,
                "method": method,
                "bbox": list(roi.bbox),
                "area": roi.area,
                "rle": mask_to_rle(m),
                "outline_png": png_base64(outline_rgba(m)),
            }

        return await run_in_threadpool(run)

    @app.post("/v1/map", tags=["assess"])
    async def region_map(
        image: Annotated[UploadFile, File(description="the photo")],
        by: Annotated[
            Literal["quality", "importance"], Form(description="what colours the heatmap")
        ] = "quality",
        max_regions: Annotated[int, Form(ge=1, description="automatic regions to assess")] = 24,
        top: Annotated[int, Form(ge=1, description="how many of the worst regions to list")] = 10,
    ) -> dict[str, Any]:
        """Every automatic region assessed; JSON with a heatmap PNG (base64) and the worst regions.

        Runs on a copy whose longer side is at most ``work_side``; ``width``/``height``, the regions'
        boxes and RLEs and the heatmap are in that frame (``scale`` = working size / upload size).
        """
        from ..assess_cli import every_region
        from ..visualize import region_heatmap

        if max_regions > limits.max_map_regions:
            raise TooManyRois(
                f"max_regions={max_regions} is over this server's limit of {limits.max_map_regions}"
            )
        t0 = time.monotonic()
        up = await _read(image, "image")

        def propose() -> tuple[np.ndarray, float, tuple[int, int], list[Roi]]:
            arr = decode_image(up, limits)
            small, s = downscale(arr, limits.work_side)
            return small, s, arr.shape[:2], every_region(small, max_regions)

        small, scale, (oh, ow), regions = await run_in_threadpool(propose)
        results = await run_assess(small, regions, MAP_TASKS, False, t0) if regions else []

        def draw() -> dict[str, Any]:
            scores = [getattr(r, by) for r in results]
            heat = region_heatmap(
                small, [r.mask for r in regions], scores if by == "quality" else [1 - s for s in scores]
            )
            items = []
            for res, roi in zip(results, regions, strict=True):
                d = res.to_dict()
                d["source"] = roi.source
                d["rle"] = roi.to_rle()
                items.append(d)
            order = sorted(range(len(results)), key=lambda i: results[i].quality)
            return {
                "image": up.filename,
                "width": int(small.shape[1]),
                "height": int(small.shape[0]),
                "original_width": int(ow),
                "original_height": int(oh),
                "scale": scale,
                "by": by,
                "rois": items,
                "worst": [results[i].name for i in order[:top]],
                "heatmap_png": png_base64(heat),
            }

        return await run_in_threadpool(draw)

    return app
