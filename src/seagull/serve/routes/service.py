"""The web page, health and the loaded model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


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


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/healthz", tags=["service"])
async def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    worker, ok = state.worker, state.worker.alive
    body = {
        "status": "ok" if ok else "inference worker stopped",
        "model": state.model_info["id"],
        "queue": worker.depth,
        "queue_size": state.limits.queue_size,
        "running": worker.stats.running,
        "jobs": worker.stats.jobs,
        "batches": worker.stats.batches,
        "busy_s": round(worker.stats.busy_s, 3),
        "image_cache": _cache_info(worker.assessor),
        "uptime_s": round(time.time() - state.started, 1),
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/v1/models", tags=["service"])
async def models(request: Request) -> dict[str, Any]:
    state = request.app.state
    return {"models": [state.model_info], "segmenter": state.segmenter.name, "limits": state.limits.to_dict()}
