"""One exception family for the whole toolkit.

Every message names the input that was wrong and says what to do about it. The CLI turns a
:class:`SeagullError` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations


class SeagullError(Exception):
    """Base class of every error this package raises on purpose."""


class ImageLoadError(SeagullError, ValueError):
    """An image file or array could not be read or is outside the limits."""


class RoiError(SeagullError, ValueError):
    """A region of interest is malformed, empty or does not fit its image."""


class SchemaError(SeagullError, ValueError):
    """A record, shard or dataset folder does not follow the dataset schema."""


class ConfigError(SeagullError, ValueError):
    """A configuration (model, training, synthesis) is missing, wrong or impossible."""


class ModelError(SeagullError, RuntimeError):
    """A model could not be built, loaded or run."""


class AnswerParseError(SeagullError, ValueError):
    """A generated answer does not follow the answer templates; no value is made up for it."""
