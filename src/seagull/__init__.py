"""seagull: no-reference image quality assessment of regions of interest (SEAGULL method).

Public API: :class:`Roi`, :func:`load_image`, the error family, and (when installed with the model)
:class:`Assessor`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    AnswerParseError,
    ConfigError,
    ImageLoadError,
    ModelError,
    RoiError,
    SchemaError,
    SeagullError,
)
from .imageio import load_image  # noqa: E402
from .roi import Roi, RoiSpec  # noqa: E402

__all__ = [
    "__version__",
    "AnswerParseError",
    "ConfigError",
    "ImageLoadError",
    "ModelError",
    "Roi",
    "RoiError",
    "RoiSpec",
    "SchemaError",
    "SeagullError",
    "load_image",
]


def __getattr__(name: str):
    # The assessor pulls in torch and the model; import it only when asked for.
    if name in ("Assessor", "RoiAssessment"):
        from . import assess

        return getattr(assess, name)
    raise AttributeError(f"module 'seagull' has no attribute {name!r}")
