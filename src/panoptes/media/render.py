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
RECT = (0, 255, 0)
BACKDROP = 0.35  # labels sit on the video darkened to this much: legible on any scene
MIN_SCALE = 0.5  # about 11 px high text: the smallest that stays readable


def style(height: int) -> tuple[float, int]:
    """(font scale, stroke) for a picture ``height`` high: text keeps its share of the
    picture from 240p to 4K, and never shrinks below legible."""
    scale = max(MIN_SCALE, height / 720)
    return scale, max(1, round(2 * scale))


def label(canvas: np.ndarray, text: str, x: float, y: float) -> tuple[int, int, int, int]:
    """Draw ``text`` with its baseline-left at normalized (x, y) on a dark backdrop,
    moved inside the picture if it would run off an edge; returns the backdrop box."""
    h, w = canvas.shape[:2]
    scale, thick = style(h)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thick)
    pad = max(2, th // 4)
    left = min(max(0, int(x * w)), max(0, w - tw - 2 * pad))
    bottom = min(max(th + 2 * pad, int(y * h) + base + pad), h)
    top = max(0, bottom - th - base - 2 * pad)
    right = min(w, left + tw + 2 * pad)
    box = canvas[top:bottom, left:right]
    np.multiply(box, BACKDROP, out=box, casting="unsafe")
    org = (left + pad, bottom - base - pad)
    cv2.putText(canvas, text, org, FONT, scale, TEXT, thick, cv2.LINE_AA)
    return left, top, right, bottom


def draw(canvas: np.ndarray, annotations: Sequence[Sequence[Any]]) -> None:
    """Draw ``[("label", text, x, y) | ("rect", l, t, r, b)]`` onto ``canvas`` in place."""
    h, w = canvas.shape[:2]
    _, thick = style(h)
    for ann in annotations:
        kind = ann[0]
        if kind == "label":
            _, text, x, y = ann
            label(canvas, str(text), float(x), float(y))
        elif kind == "rect":
            _, left, top, right, bottom = ann
            p1 = (int(float(left) * w), int(float(top) * h))
            p2 = (int(float(right) * w), int(float(bottom) * h))
            cv2.rectangle(canvas, p1, p2, RECT, thick)


def thumbnail(image: np.ndarray, max_width: int | None) -> np.ndarray:
    """``image`` scaled down (aspect kept) to at most ``max_width`` wide."""
    h, w = image.shape[:2]
    if not max_width or w <= max_width:
        return image
    size = (int(max_width), max(1, round(h * max_width / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} picture as JPEG")
    return buf.tobytes()


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
