"""``POST /v1/segment``: a point or box prompt to a mask and an outline PNG."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from ...errors import RoiError
from ...roi import Roi, mask_to_rle, numbers
from ..inputs import check_aspect, decode_image
from ..segment import outline_rgba, png_base64
from .common import checked_form, read_upload

router = APIRouter(tags=["assess"])
FORM = checked_form(single=("image", "point", "box"), not_empty=("point", "box"))


@router.post("/v1/segment", dependencies=[FORM])
async def segment(
    request: Request,
    image: Annotated[UploadFile, File(description="the photo")],
    point: Annotated[str | None, Form(description="x,y: segment the region under this point")] = None,
    box: Annotated[str | None, Form(description="x,y,w,h: segment the object in this box")] = None,
) -> dict[str, Any]:
    """A point or box prompt -> the mask (COCO RLE at image size) and a transparent outline PNG."""
    if (point is None) == (box is None):
        raise RoiError("give exactly one prompt: either 'point' (x,y) or 'box' (x,y,w,h)")
    limits, segmenter = request.app.state.limits, request.app.state.segmenter
    up = await read_upload(image, "image")

    def run() -> dict[str, Any]:
        arr = decode_image(up, limits)
        check_aspect(arr, up, "/v1/segment")
        if point is not None:
            xy = numbers(point, 2, "point")
            m, prompt, method = segmenter.point(arr, xy), {"point": xy}, segmenter.methods["point"]
        else:
            b = numbers(box, 4, "box")
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
