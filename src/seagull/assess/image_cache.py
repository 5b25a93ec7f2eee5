"""A byte-bounded LRU cache of per-image work, keyed by the image's pixels.

Interactive use sends the same photo again and again with a new region (the web page posts the photo
with every click, a notebook re-runs a cell with another box). Everything that depends on the image
alone, not on the region, can then be reused: the tower's encoding and the language model's cache of
the prompt prefix. The key is a digest of the decoded pixels, so the same photo re-encoded or
re-uploaded still hits, and two photos never share an entry unless their pixels are equal.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..imageio import image_digest

__all__ = ["ImageCache", "image_digest"]


class ImageCache:
    """``get(key)`` / ``put(key, value, nbytes)``; least recently used entries go first once the
    entries' bytes would exceed ``max_bytes``. ``max_bytes=0`` disables it. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, value: Any, nbytes: int) -> bool:
        """Store ``value``; False (nothing stored) when it alone exceeds the budget."""
        if nbytes > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            while self._entries and self._bytes + nbytes > self.max_bytes:
                _, (_, size) = self._entries.popitem(last=False)
                self._bytes -= size
            self._entries[key] = (value, nbytes)
            self._bytes += nbytes
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
