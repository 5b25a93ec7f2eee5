"""``POST /v1/map``: every automatic region of a photo assessed, with a heatmap."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from ...assess import regions as region_maps
from ...roi import Roi
from ..inputs import TooManyRois, check_aspect, decode_image
from ..segment import downscale, png_base64
from .common import read_upload, run_assess

router = APIRouter(tags=["assess"])


@router.post("/v1/map")
async def region_map(
    request: Request,
    image: Annotated[UploadFile, File(description="the photo")],
    by: Annotated[Literal["quality", "importance"], Form(description="what colours the heatmap")] = "quality",
    max_regions: Annotated[int, Form(ge=1, description="automatic regions to assess")] = 24,
    top: Annotated[int, Form(ge=1, description="how many of the worst regions to list")] = 10,
) -> dict[str, Any]:
    """Every automatic region assessed; JSON with a heatmap PNG (base64) and the worst regions.

    Runs on a copy whose longer side is at most ``work_side``; ``width``/``height``, the regions'
    boxes and RLEs and the heatmap are in that frame (``scale`` = working size / upload size).
    """
    from ...assess.pictures import region_heatmap
    from ...proposals import every_region

    limits = request.app.state.limits
    if max_regions > limits.max_map_regions:
        raise TooManyRois(
            f"max_regions={max_regions} is over this server's limit of {limits.max_map_regions}"
        )
    t0 = time.monotonic()
    up = await read_upload(image, "image")

    def propose() -> tuple[np.ndarray, float, tuple[int, int], list[Roi]]:
        arr = decode_image(up, limits)
        check_aspect(arr, up, "/v1/map")
        small, s = downscale(arr, limits.work_side)
        return small, s, arr.shape[:2], every_region(small, max_regions)

    small, scale, (oh, ow), regions = await run_in_threadpool(propose)
    results = await run_assess(request, small, regions, region_maps.MAP_TASKS, False, t0) if regions else []

    def draw() -> dict[str, Any]:
        rmap = region_maps.region_map(results, by)
        heat = region_heatmap(small, [r.mask for r in regions], rmap.values)
        items = []
        for res, roi in zip(results, regions, strict=True):
            d = res.to_dict()
            d["source"] = roi.source
            d["rle"] = roi.to_rle()
            items.append(d)
        return {
            "image": up.filename,
            "width": int(small.shape[1]),
            "height": int(small.shape[0]),
            "original_width": int(ow),
            "original_height": int(oh),
            "scale": scale,
            "by": by,
            "rois": items,
            "worst": [results[i].name for i in rmap.worst[:top]],
            "heatmap_png": png_base64(heat),
        }

    return await run_in_threadpool(draw)
