"""Drawing what applications attach to frames: labels and rectangles, and tiling.

Annotations travel with a frame as data (normalized coordinates), never drawn into
the application's image, and are rendered here at the sink at output resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT = (255, 255, 255)
OUTLINE = (0, 0, 0)
RECT = (0, 255, 0)


def draw(canvas: np.ndarray, annotations: Sequence[Sequence[Any]]) -> None:
    """Draw ``[("label", text, x, y) | ("rect", l, t, r, b)]`` onto ``canvas`` in place."""
    h, w = canvas.shape[:2]
    # Scale strokes with the picture so labels stay legible from 240p to 1080p.
    scale = max(0.35, h / 720)
    thick = max(1, round(2 * scale))
    for ann in annotations:
        kind = ann[0]
        if kind == "label":
            _, text, x, y = ann
            org = (int(float(x) * w), int(float(y) * h))
            cv2.putText(canvas, str(text), org, FONT, scale, OUTLINE, thick + 2, cv2.LINE_AA)
            cv2.putText(canvas, str(text), org, FONT, scale, TEXT, thick, cv2.LINE_AA)
        elif kind == "rect":
            _, left, top, right, bottom = ann
            p1 = (int(float(left) * w), int(float(top) * h))
            p2 = (int(float(right) * w), int(float(bottom) * h))
            cv2.rectangle(canvas, p1, p2, RECT, thick)


def grid(count: int) -> tuple[int, int]:
    """(columns, rows) of the tiling for ``count`` streams (the HDMI output tiles them)."""
    cols = max(1, math.ceil(math.sqrt(count)))
    return cols, max(1, math.ceil(count / cols))


def canvas_size(first: tuple[int, int], count: int, max_w: int = 1920) -> tuple[int, int]:
    """Output size: one stream at its own size; several tiled, capped at ``max_w`` wide."""
    w, h = first
    cols, rows = grid(count)
    cw, ch = w * cols, h * rows
    if cw > max_w:
        k = max_w / cw
        cw, ch = int(cw * k), int(ch * k)
    return cw // 2 * 2, ch // 2 * 2


def place(canvas: np.ndarray, tile: int, count: int, image: np.ndarray) -> np.ndarray:
    """Copy ``image`` resized into cell ``tile`` of ``canvas``; returns the cell view."""
    cols, rows = grid(count)
    ch, cw = canvas.shape[0] // rows, canvas.shape[1] // cols
    r, c = divmod(tile, cols)
    cell = canvas[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw]
    if image.shape[:2] == cell.shape[:2]:
        np.copyto(cell, image)
    else:
        cv2.resize(image, (cw, ch), dst=cell, interpolation=cv2.INTER_AREA)
    return cell
