"""Assessing regions of photos: the :class:`Assessor`, the per-image result (:func:`assess_item`),
region maps (:func:`region_map`), batches, pictures and the ``seagull assess`` / ``seagull map`` commands.

Names are imported on first use, so that the commands start without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Assessor": ".assessor",
    "DEFAULT_WEIGHTS_DIR": ".assessor",
    "default_model_dir": ".assessor",
    "assess_item": ".items",
    "item_record": ".items",
    "region_map": ".region_maps",
    "create_metric": ".metric",
    "RegionPrediction": "..region_prediction",
}
# Earlier name of the per-ROI result, kept for code written against it: an alias of RegionPrediction.
_ALIASES = {"RoiAssessment": "RegionPrediction"}

__all__ = [*_EXPORTS, *_ALIASES]


def __getattr__(name: str) -> Any:
    target = _ALIASES.get(name, name)
    if target not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[target], __name__), target)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
