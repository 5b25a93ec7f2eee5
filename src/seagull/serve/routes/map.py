"""``POST /v1/map``: every region of a photo (tiles, automatic segments or superpixels) assessed, with a map picture."""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from ...assess import region_maps
from ...roi import Roi
from ..inputs import TooManyRois, check_aspect, decode_image
from ..segment import downscale, png_base64
from .common import checked_form, read_upload, run_assess

router = APIRouter(tags=["assess"])
OPTIONS = ("mode", "by", "tile", "max_regions", "top")
FORM = checked_form(single=("image", *OPTIONS), not_empty=OPTIONS)


@router.post("/v1/map", dependencies=[FORM])
async def region_map(
    request: Request,
    image: Annotated[UploadFile, File(description="the photo")],
    mode: Annotated[
        str,
        Form(
            description="tiles (overlapping tiles: they localise damage; the default), segments "
            "(automatic content regions) or superpixels"
        ),
    ] = region_maps.MAP_MODES[0],
    by: Annotated[
        str,
        Form(description=f"what is mapped, one of {', '.join(region_maps.MAP_BY)} (a type: its confidence)"),
    ] = "quality",
    tile: Annotated[
        int | None, Form(ge=region_maps.MIN_TILE, description="tile side in pixels at the working size")
    ] = None,
    max_regions: Annotated[int, Form(ge=1, description="regions to assess (segments, superpixels)")] = 24,
    top: Annotated[int, Form(ge=1, description="how many of the worst regions to list")] = 10,
) -> dict[str, Any]:
    """Every region of the photo assessed; JSON with a map picture (PNG, base64) and the worst regions.

    Runs on a copy whose longer side is at most ``work_side``; ``width``/``height``, the regions'
    boxes and RLEs, ``tile`` and the picture are in that frame (``scale`` = working size / upload size).
    """
    limits = request.app.state.limits
    if max_regions > limits.max_map_regions:
        raise TooManyRois(
            f"max_regions={max_regions} is over this server's limit of {limits.max_map_regions}"
        )
    region_maps.check_map_options(mode, by, tile)
    t0 = time.monotonic()
    up = await read_upload(image, "image")

    def propose() -> tuple[np.ndarray, float, tuple[int, int], list[Roi]]:
        arr = decode_image(up, limits)
        check_aspect(arr, up, "/v1/map")
        small, s = downscale(arr, limits.work_side)
        rois = region_maps.map_rois(small, mode, tile, max_regions)
        if len(rois) > limits.max_map_tiles:
            raise TooManyRois(
                f"{len(rois)} tiles of {tile} px at the working size {small.shape[1]}x{small.shape[0]} are over "
                f"this server's limit of {limits.max_map_tiles}; give a larger tile"
            )
        return small, s, arr.shape[:2], rois

    small, scale, (oh, ow), regions = await run_in_threadpool(propose)
    tasks = region_maps.map_tasks(by)
    results = await run_assess(request, small, regions, tasks, False, t0) if regions else []

    def draw() -> dict[str, Any]:
        rmap = region_maps.region_map(results, by)
        items = []
        for res, roi in zip(results, regions, strict=True):
            d = res.to_dict()
            d["source"] = roi.source
            d["rle"] = roi.to_rle()
            items.append(d)
        answer = {
            "image": up.filename,
            "width": int(small.shape[1]),
            "height": int(small.shape[0]),
            "original_width": int(ow),
            "original_height": int(oh),
            "scale": scale,
            "mode": mode,
            "by": by,
            "tile": (tile or region_maps.DEFAULT_TILE) if mode == "tiles" else None,
            "values": rmap.values,
            "rois": items,
            "worst": [results[i].name for i in rmap.worst[:top]],
        }
        # Laid over the photo by the page (which draws its own legend): no scale panel.
        picture = region_maps.map_image(small, regions, rmap, mode, scale=False) if regions else small
        return {**answer, "heatmap_png": png_base64(picture)}

    return await run_in_threadpool(draw)
