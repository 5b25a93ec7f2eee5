"""What the endpoints share: checking the form, reading uploads and running the model on the
inference thread."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import Depends, Request, UploadFile

from ...roi import Roi
from ..inputs import FieldError, Upload, safe_name


def checked_form(single: Sequence[str], not_empty: Sequence[str] = ()) -> Any:
    """A dependency of a POST endpoint whose inputs are all multipart form fields: no query
    parameters (they would be ignored), each field of ``single`` sent at most once (FastAPI would keep
    the last part and drop the others), and no field of ``not_empty`` sent empty (FastAPI reads an
    empty form field as absent and would use the default). Each answers 422 naming the field."""

    async def check(request: Request) -> None:
        path = request.url.path
        if request.query_params:
            names = list(dict.fromkeys(request.query_params.keys()))
            shown = ", ".join(f"{n[:40]!r}" for n in names[:10]) + (" ..." if len(names) > 10 else "")
            raise FieldError(
                f"query parameter(s) {shown}: {path} reads no query parameters; send them as "
                "multipart/form-data fields"
            )
        form = await request.form()  # FastAPI has parsed the body already: this is its copy
        for name in single:
            n = len(form.getlist(name))
            if n > 1:
                fix = "send each photo in its own request" if name == "image" else "send it once"
                raise FieldError(f"field {name!r} was sent {n} times; {path} reads one: {fix}")
        for name in not_empty:
            value = form.get(name)
            if isinstance(value, str) and not value.strip():
                raise FieldError(f"field {name!r} is empty; leave it out for its default or give a value")

    return Depends(check)


async def form_text(request: Request, name: str) -> str | None:
    """A text field as sent (``""`` when sent empty, where FastAPI gives the default); None if absent."""
    value = (await request.form()).get(name)
    return value if isinstance(value, str) else None


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
