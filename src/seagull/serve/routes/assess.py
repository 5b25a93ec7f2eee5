"""``POST /v1/assess``: the ROIs of one photo, as ``seagull assess --json`` gives them."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from ...assess.items import item_record
from ...labels import TASKS
from ...roi import Roi, parse_tasks, request_rois
from ..inputs import build_specs, decode_image
from .common import checked_form, form_text, read_upload, run_assess

router = APIRouter(tags=["assess"])
# Fields read once per request (box, point and masks repeat); tasks="" is refused by parse_tasks.
FORM = checked_form(single=("image", "rois", "box_format", "tasks", "text"), not_empty=("box_format", "text"))


@router.post("/v1/assess", dependencies=[FORM])
async def assess(
    request: Request,
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
    limits, segmenter = request.app.state.limits, request.app.state.segmenter
    up = await read_upload(image, "image")
    mask_ups = [await read_upload(m, f"mask{i}") for i, m in enumerate(masks)]
    sent = await form_text(request, "tasks")  # an empty field is refused, as on the command line
    task_list = parse_tasks(tasks if sent is None else sent)

    def prepare() -> tuple[np.ndarray, list[Roi]]:
        arr = decode_image(up, limits)
        specs = build_specs(rois, box, point, box_format, mask_ups, arr.shape[:2], limits)
        found: list[Roi] = []
        return arr, request_rois(arr, specs, found, segmenter.point)  # none: the whole image

    arr, roi_list = await run_in_threadpool(prepare)
    results = await run_assess(request, arr, roi_list, task_list, text, t0)
    return item_record(up.filename, arr, results)
