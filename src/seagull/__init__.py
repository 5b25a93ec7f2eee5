"""seagull: no-reference image quality assessment of regions of interest (SEAGULL method).

Public API: :class:`Roi`, :func:`load_image`, the error family, :class:`Assessor`, the per-ROI
result :class:`RegionPrediction` (``RoiAssessment`` is its earlier name, kept as an alias) and
:func:`create_metric` (every metric and model folder as one callable, pyiqa's shape).
"""

from __future__ import annotations

import importlib
from typing import Any

from .version import __version__

# Public names and the module of each, imported on first use (PEP 562): importing a part such as
# seagull.records or seagull.synth loads only what that part needs, never torch or the model.
_EXPORTS = {
    **dict.fromkeys(
        (
            "AnswerParseError",
            "ConfigError",
            "ImageLoadError",
            "ModelError",
            "RoiError",
            "SchemaError",
            "SeagullError",
        ),
        "errors",
    ),
    "load_image": "imageio",
    "Roi": "roi",
    "RoiSpec": "roi",
    "RegionPrediction": "region_prediction",
    "DistortionPrediction": "region_prediction",
    "Assessor": "assess",
    "create_metric": "assess",
    "RoiAssessment": "assess",  # an alias of RegionPrediction, its earlier name
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seagull' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
