"""What the endpoints share: reading uploads and running the model on the inference thread."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import Request, UploadFile

from ...roi import Roi
from ..inputs import Upload, safe_name


async def read_upload(upload: UploadFile | None, default: str = "upload") -> Upload:
    if upload is None:
        return Upload(default, b"")
    return Upload(safe_name(upload.filename, default), await upload.read())


async def run_assess(
    request: Request, image: np.ndarray, rois: Sequence[Roi], tasks: Sequence[str], text: bool, t0: float
) -> Any:
    """Assess on the inference thread within what is left of the request's time (from ``t0``)."""
    state = request.app.state
    budget = state.limits.request_timeout_s
    remaining = max(0.1, budget - (time.monotonic() - t0))
    fut = state.worker.submit_assess(image, rois, tasks, text, remaining)
    return await state.worker.wait(fut, remaining, budget)
