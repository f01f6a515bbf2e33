"""The rules a camera source applies, checked directly: the spec's 2-megapixel scaling,
credentials masked in anything printed, retry delays that grow, cap and spread."""

from __future__ import annotations

import pytest

from panoptes.media.camera_url import credentials, mask, with_credentials
from panoptes.media.source import MAX_PIXELS, Backoff, accepted_codecs, fit


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), (1920, 1080)),  # 2 MP: delivered as is
        ((1280, 720), (1280, 720)),
        ((3840, 2160), (1920, 1080)),  # 4K -> 1080p
        ((2560, 1440), (1920, 1080)),
    ],
)
def test_streams_above_2_megapixels_become_1080p(size, expected):
    assert fit(*size) == expected


@pytest.mark.parametrize("size", [(2592, 1944), (2160, 3840), (4000, 3000), (7680, 1080)])
def test_other_shapes_keep_their_aspect_within_the_1080p_budget(size):
    w, h = fit(*size)
    assert w * h <= MAX_PIXELS and w % 2 == 0 and h % 2 == 0
    assert w * h > 0.98 * MAX_PIXELS  # not smaller than it has to be
    assert abs(w / h - size[0] / size[1]) < 0.01


def test_credentials_go_into_the_url_and_never_come_out_of_mask():
    url = with_credentials("rtsp://10.0.0.5:554/live", "admin", "p@ss:w/rd")
    assert url == "rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5:554/live"
    assert credentials(url) == ("admin", "p@ss:w/rd")
    line = f"cannot open {url}: refused; FFmpeg said p@ss:w/rd"
    assert mask(line, ("p@ss:w/rd",)) == (
        "cannot open rtsp://admin:***@10.0.0.5:554/live: refused; FFmpeg said ***"
    )
    assert mask("rtsp://cam/live") == "rtsp://cam/live"


def test_retry_delays_double_up_to_the_cap_with_jitter():
    b = Backoff(0.5, 10.0)
    delays = [b.next() for _ in range(12)]
    for i, d in enumerate(delays):
        cap = min(10.0, 0.5 * 2**i)
        assert cap / 2 <= d <= cap
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped, yet not in lockstep
    b.reset()
    assert b.next() <= 0.5


def test_only_h264_unless_more_codecs_are_allowed(monkeypatch):
    monkeypatch.delenv("PANOPTES_CAMERA_CODECS", raising=False)
    assert accepted_codecs({}) == {"h264"}
    assert accepted_codecs({"codecs": ["H264", "h265"]}) == {"h264", "hevc"}
    monkeypatch.setenv("PANOPTES_CAMERA_CODECS", "h264,hevc")
    assert accepted_codecs({}) == {"h264", "hevc"}
