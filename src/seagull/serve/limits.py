"""Request limits of the server: upload size, pixels, ROIs, queue depth and time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Every limit answers a clear 413 or 422, never a crash.

    Memory is the reason for the pixel and ROI limits: each ROI is a boolean mask at image size,
    so ``max_pixels * max_rois`` bytes is the worst case of the masks of one request.
    """

    max_upload_bytes: int = 25 * 1024 * 1024  # whole request body (image + masks + fields)
    max_pixels: int = 16_000_000  # decoded image (and mask image) pixels
    max_rois: int = 16  # ROIs per /v1/assess request
    max_map_regions: int = 32  # automatic regions per /v1/map request
    max_map_tiles: int = 512  # tiles per /v1/map request in tiles mode (441 at work_side, 96 px tiles)
    work_side: int = 1024  # longer side at which /v1/map and /v1/segment proposals run
    request_timeout_s: float = 60.0  # queue wait + inference; 504 after this
    queue_size: int = 64  # jobs waiting for the inference worker; 503 beyond this
    max_batch: int = 16  # queued /v1/assess requests the worker may run as one batch
    # Memory for the encodings of recent photos: the page posts the photo with every click, and a
    # repeated photo then skips the vision tower and the prompt prefix (0 = off).
    image_cache_mb: float = 256.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "image_cache_mb":  # 0 turns the cache off
                if not v >= 0:
                    raise ConfigError(f"server limit image_cache_mb must be >= 0 (0 = off), got {v}")
                continue
            if not v > 0:
                raise ConfigError(f"server limit {f.name} must be positive, got {v}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Limits:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown server limit(s) {unknown}; known: {sorted(known)}")
        return cls(**d)
