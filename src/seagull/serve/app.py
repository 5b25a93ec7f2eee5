"""The FastAPI application: the model, the limits and the error mapping around the routers.

``create_app(model, limits)`` loads the model once and starts one inference thread
(:mod:`seagull.serve.worker`); the endpoints (:mod:`seagull.serve.routes`) read it from ``app.state``.
Image decoding, ROI parsing and the weight-free segmentation run in the request thread pool; only the
model runs on the inference thread. The API docs (``/docs``, ``/redoc``) load their scripts from this
server, never from a CDN.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import ModelError
from ..labels import TASKS
from .bodylimit import BodyLimitMiddleware
from .errors import UnexpectedErrorMiddleware, install_error_handlers
from .hosts import DEFAULT_ALLOWED_HOSTS, AllowedHostsMiddleware, normalise_hosts
from .limits import Limits
from .routes import ROUTERS
from .routes.service import STATIC_DIR
from .segment import Segmenter
from .worker import InferenceWorker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger("seagull.serve")
DESCRIPTION = (
    "No-reference quality assessment of regions of interest (SEAGULL). Upload a photo with "
    "regions (boxes, points, COCO RLE, polygons or mask images); get each region's quality, "
    "importance and distortions. The web page is at `/`."
)


def _load_assessor(model: Any, image_cache_mb: float) -> tuple[Any, str]:
    from ..assess import Assessor

    if isinstance(model, Assessor):
        return model, getattr(model, "model_id", "custom")
    if model is None:
        return Assessor(image_cache_mb=image_cache_mb), "default"
    if isinstance(model, (str, Path)):
        return Assessor(model, image_cache_mb=image_cache_mb), Path(model).name or "model"
    raise ModelError(f"model must be None, a model folder or an Assessor, got {type(model).__name__}")


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


def create_app(
    model: Any = None,
    limits: Limits | None = None,
    sam: str | Path | None = None,
    sam_type: str = "vit_b",
    allowed_hosts: Iterable[str] | str | None = None,
) -> FastAPI:
    """The server for ``model`` (None: the shipped default; a model folder; or an Assessor).

    ``allowed_hosts``: the host names a request's ``Host`` header may name (default: localhost,
    127.0.0.1 and ::1; ``"*"`` for any); other requests get 400 (:mod:`seagull.serve.hosts`).
    """
    limits = limits or Limits()
    hosts = normalise_hosts(DEFAULT_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts)
    assessor, model_id = _load_assessor(model, limits.image_cache_mb)
    worker = InferenceWorker(assessor, limits.queue_size, limits.max_batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        worker.start()
        yield
        await run_in_threadpool(worker.stop)

    app = FastAPIOffline(
        title="seagull",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI would fetch a validity badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.worker, app.state.limits, app.state.allowed_hosts = worker, limits, hosts
    app.state.segmenter = Segmenter(sam, sam_type, limits.work_side)
    app.state.model_info, app.state.started = _model_info(assessor, model_id), time.time()
    # Inside the body limit: a refused Host's body is drained, and that stays within the limit.
    app.add_middleware(AllowedHostsMiddleware, allowed_hosts=hosts)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_upload_bytes)
    app.add_middleware(UnexpectedErrorMiddleware)  # outermost: it sees what every other layer raised
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    worker.start()
    return app
