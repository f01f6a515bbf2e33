"""panoramasdk.media: one frame of one camera stream, with its annotations."""

from __future__ import annotations

from typing import Any

import numpy as np


class media:
    """A video frame: ``image`` (HxWx3 uint8 BGR, writable) plus stream metadata.

    ``add_label``/``add_rect`` record annotations in normalized coordinates; the
    output sink draws them. They are not drawn into ``image``.
    """

    __slots__ = ("_ann", "_frame", "_image", "is_cached", "stream_id", "stream_uri", "time_stamp")

    def __init__(
        self,
        image: np.ndarray | None = None,
        *,
        stream_id: str = "",
        stream_uri: str = "",
        time_stamp: tuple[int, int] = (0, 0),
        is_cached: bool = False,
        _frame: Any = None,
    ) -> None:
        self._image = image if image is not None else np.zeros((1, 1, 3), np.uint8)
        self.stream_id = stream_id
        self.stream_uri = stream_uri
        self.time_stamp = time_stamp
        self.is_cached = is_cached
        self._ann: list[list[Any]] = []
        self._frame = _frame  # the ring frame behind the image (keeps its view alive)

    @property
    def image(self) -> np.ndarray:
        return self._image

    @image.setter
    def image(self, value: np.ndarray) -> None:
        # Applications replace the picture (e.g. a resized or drawn copy): accept it.
        self._image = np.asarray(value)

    def add_label(self, text: str, x: float, y: float) -> None:
        """Attach ``text`` at normalized position (x, y), both in [0, 1)."""
        self._ann.append(["label", str(text), float(x), float(y)])

    def add_rect(self, left: float, top: float, right: float, bottom: float) -> None:
        """Attach a rectangle with normalized corners (left, top) and (right, bottom)."""
        self._ann.append(["rect", float(left), float(top), float(right), float(bottom)])

    @property
    def annotations(self) -> list[list[Any]]:
        return list(self._ann)

    def __repr__(self) -> str:
        h, w = self._image.shape[:2]
        return (
            f"media(stream_id={self.stream_id!r}, {w}x{h}, time_stamp={self.time_stamp}, "
            f"is_cached={self.is_cached})"
        )
