"""One image's assessment as a record: the dict that ``seagull assess --json``, batch JSONL lines
and ``POST /v1/assess`` give."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, SeagullError
from ..labels import TASKS
from ..region_prediction import RegionPrediction
from ..roi import Roi


def item_record(image_name: str, image: np.ndarray, results: Sequence[RegionPrediction]) -> dict[str, Any]:
    """The result record of one image from its regions' predictions."""
    return {
        "image": image_name,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "rois": [r.to_dict() for r in results],
    }


def assess_item(
    assessor: Any,
    image: np.ndarray,
    rois: Sequence[Roi],
    image_name: str,
    tasks: Sequence[str] = TASKS,
    text: bool = False,
) -> dict[str, Any]:
    """Image + ROIs -> the result record (non-finite numbers are a :class:`ModelError`)."""
    item = item_record(image_name, image, assessor.assess(image, rois, tasks=tasks, text=text))
    item_json(item)  # refuse non-finite numbers here, whatever the output format
    return item


def item_json(item: dict[str, Any], indent: int | None = None) -> str:
    """One result as strict JSON; a NaN or infinity anywhere is a :class:`ModelError`, never printed."""
    try:
        return json.dumps(item, indent=indent, allow_nan=False)
    except ValueError as e:
        raise ModelError(
            f"{item.get('image', 'image')}: the model produced a non-finite score ({e}); "
            "please report it together with the image"
        ) from e


def error_record(path: Path | str, error: Exception) -> dict[str, Any]:
    """The output line of an image that failed; errors not of the project's own family are marked."""
    note = "" if isinstance(error, SeagullError) else " (unexpected; please report it)"
    return {"image": str(path), "error": f"{type(error).__name__}: {error}{note}"}
