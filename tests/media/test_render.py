"""Labels and rectangles as a viewer sees them: legible and whole at every resolution."""

from __future__ import annotations

import numpy as np
import pytest

from panoptes.media import render


def _white_box(canvas: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero((canvas > 200).all(axis=2))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize("height", [240, 480, 1080, 2160])
def test_a_label_is_legible_and_whole_at_any_resolution(height):
    width = height * 16 // 9
    canvas = np.full((height, width, 3), 128, np.uint8)  # mid grey: white text must stand out
    # Far right and at the very bottom: it is moved in rather than cut off.
    render.draw(canvas, [["label", "Person 97%", 0.97, 0.99]])
    x0, y0, x1, y1 = _white_box(canvas)
    assert x0 > 0 and y0 > 0 and x1 < width - 1 and y1 < height - 1
    text_height = y1 - y0
    assert text_height >= 10  # readable even on a 240p stream
    assert text_height >= 0.02 * height  # and keeps its share of a large picture
    # The text sits on a darkened backdrop: contrast whatever the video is.
    assert canvas[y0 : y1 + 1, x0 : x1 + 1].min() < 60


def test_label_text_scales_with_the_picture():
    heights = {}
    for h in (720, 1440):
        canvas = np.full((h, h * 16 // 9, 3), 128, np.uint8)
        render.draw(canvas, [["label", "Car", 0.1, 0.5]])
        _, y0, _, y1 = _white_box(canvas)
        heights[h] = y1 - y0
    assert 1.8 < heights[1440] / heights[720] < 2.2


def test_rectangles_land_where_asked():
    canvas = np.zeros((400, 800, 3), np.uint8)
    render.draw(canvas, [["rect", 0.25, 0.25, 0.75, 0.5]])
    green = (canvas[:, :, 1] == 255) & (canvas[:, :, 0] == 0)
    ys, xs = np.nonzero(green)
    assert abs(xs.min() - 200) <= 1 and abs(ys.min() - 100) <= 1
    assert abs(xs.max() - 600) <= 1 and abs(ys.max() - 200) <= 1
    assert not green[150, 400]  # an outline, not a fill


def test_thumbnails_keep_the_aspect():
    img = np.zeros((1080, 1920, 3), np.uint8)
    assert render.thumbnail(img, 320).shape == (180, 320, 3)
    assert render.thumbnail(img, 4000) is img
