"""A list of ROIs that keeps each mask as its bounding-box crop.

A :class:`~seagull.roi.Roi` holds a boolean mask at image size: a thousand boxes on a 12 MP photo
are 12 GB of masks. :class:`RoiList` stores each ROI as the crop of its mask to its bounding box (a
box costs nothing beyond its corner and size) and gives back a full :class:`Roi` when an item is
read; the Assessor reads its ROIs a chunk at a time, so only one chunk of full masks exists at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from ..roi import Roi


@dataclass(frozen=True)
class _Packed:
    name: str
    source: str
    meta: dict[str, Any]
    shape: tuple[int, int]  # (height, width) of the image
    x: int
    y: int
    crop: np.ndarray | None  # None: the whole bounding box is inside (a box ROI)
    height: int
    width: int

    def unpack(self) -> Roi:
        mask = np.zeros(self.shape, bool)
        window = mask[self.y : self.y + self.height, self.x : self.x + self.width]
        if self.crop is None:
            window[...] = True
        else:
            window[...] = self.crop
        return Roi(mask, self.name, self.source, dict(self.meta))


def pack(roi: Roi) -> _Packed:
    """``roi`` as its bounding-box crop (no copy of a full box)."""
    x, y, w, h = roi.bbox
    crop = roi.mask[y : y + h, x : x + w]
    return _Packed(
        roi.name,
        roi.source,
        dict(roi.meta),
        (int(roi.mask.shape[0]), int(roi.mask.shape[1])),
        x,
        y,
        None if crop.all() else crop.copy(),
        h,
        w,
    )


class RoiList(Sequence[Roi]):
    """ROIs kept compact; ``rois[i]`` (and iteration) gives a :class:`Roi` with its full mask."""

    def __init__(self, rois: Iterable[Roi] = ()) -> None:
        self._items: list[_Packed] = []
        for r in rois:
            self.append(r)

    def append(self, roi: Roi) -> None:
        self._items.append(pack(roi))

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> Roi: ...

    @overload
    def __getitem__(self, i: slice) -> list[Roi]: ...

    def __getitem__(self, i: int | slice) -> Roi | list[Roi]:
        if isinstance(i, slice):
            return [p.unpack() for p in self._items[i]]
        return self._items[i].unpack()

    def __iter__(self) -> Iterator[Roi]:
        return (p.unpack() for p in self._items)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._items]

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored crops."""
        return sum(p.crop.nbytes for p in self._items if p.crop is not None)
