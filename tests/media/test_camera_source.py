"""A camera source against the real RTSP test camera: what a user of a camera node sees in
the frames and in the camera node's log."""

from __future__ import annotations

import json
import re
import time

import pytest
from appkit import wait_until as until

from panoptes.media import FAILED, RingReader
from panoptes.media.ring import FrameRing
from panoptes.media.source import EXIT_CONFIG, NOT_H264

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "s3cr:et@pw"  # characters that must be quoted in a URL


def _reader(ring: FrameRing) -> RingReader:
    return RingReader(FrameRing.attach(ring.name))


def _take(reader: RingReader, timeout: float = 30.0):
    assert reader.wait(timeout), "no frame"
    return reader.take()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_steady_stream_with_credentials(camera, ring, source, transport):
    cam = camera(username="alice", password=PASSWORD)
    r = ring()
    src = source(r, cam.url, username="alice", password=PASSWORD, transport=transport)
    reader = _reader(r)
    frames = [_take(reader) for _ in range(20)]
    seqs = [f.seq for f in frames]
    assert seqs == sorted(set(seqs)), seqs
    assert all(f.image.shape == (240, 320, 3) for f in frames)
    # Apps see the camera's URL without its credentials; the stamps are the arrival time.
    assert frames[-1].extra["uri"] == cam.url.replace("rtsp://", "rtsp://alice:***@")
    assert abs(time.time() - (frames[-1].time_stamp[0] + frames[-1].time_stamp[1] / 1e6)) < 60
    assert PASSWORD not in src.log() and "s3cr" not in src.log()


def test_camera_killed_for_10_s_then_back(camera, ring, source):
    cam = camera()
    r = ring()
    src = source(r, cam.url)
    reader = _reader(r)  # the consumer: one reader throughout, never restarted
    before = [_take(reader) for _ in range(10)]
    cam.kill()
    until(lambda: "disconnected; reconnecting" in src.log(), 30, "the disconnect logged")
    until(lambda: "Connection refused" in src.log(), 30, "a failed reconnect")
    reader.drain()
    gone = reader.take()  # at most the frame decoded just before the loss
    time.sleep(10)
    assert reader.take() is None, "frames while the camera was away"
    cam.start()
    after = [_take(reader, 60) for _ in range(10)]
    assert after[0].seq > (gone or before[-1]).seq
    log = src.log()
    assert "Failed to get SDP description: Connection to server failed: Connection refused" in log
    gap = float(re.search(r"frames again after a gap of ([\d.]+) s", log)[1])
    assert gap >= 10, log
    delays = [float(d) for d in re.findall(r"retry in ([\d.]+) s", log)]
    assert delays and max(delays) <= 10.0, delays  # capped
    assert src.proc.poll() is None


def test_wrong_password_is_reported_and_retried_without_the_password(
    camera, ring, source, tmp_path
):
    cam = camera(username="alice", password=PASSWORD)
    r = ring()
    wrong = "hunter2-wrong"
    status = tmp_path / "cam.status.json"
    src = source(r, cam.url.replace("rtsp://", f"rtsp://alice:{wrong}@"), status_file=str(status))
    until(lambda: src.log().count("401 Unauthorized") >= 4, 60, "four failed attempts")
    log = src.log()
    line = next(x for x in log.splitlines() if "401" in x)
    assert (
        "cam: Failed to get SDP description: 401 Unauthorized; with the result code: 401 "
        "(check the camera's username and password)" in line
    ), line
    assert wrong not in log, log
    assert f"(rtsp://alice:***@127.0.0.1:{cam.port}/cam)" in line
    # The runtime's node status gets the reason, masked the same way.
    reason = json.loads(status.read_text())["reason"]
    assert reason.startswith(f"cannot reach rtsp://alice:***@127.0.0.1:{cam.port}/cam: "), reason
    assert "401 Unauthorized" in reason and wrong not in reason
    delays = [float(d) for d in re.findall(r"retry in ([\d.]+) s", log)]
    # Exponential with jitter: each cap doubles (0.5, 1, 2, 4 s), the delay is 50-100% of it.
    for i, d in enumerate(delays[:4]):
        assert 0.5 * 0.5 * 2**i <= d <= 0.5 * 2**i, delays
    assert r.latest_seq == 0 and src.proc.poll() is None


def test_unknown_path_is_a_404_in_the_camera_log(camera, ring, source):
    cam = camera()
    r = ring()
    src = source(r, cam.url.rsplit("/", 1)[0] + "/no-such-path")
    until(lambda: "404" in src.log(), 30, "the 404")
    line = next(x for x in src.log().splitlines() if "404" in x)
    assert "cam: Failed to get SDP description: 404 Not Found; with the result code: 404" in line
    assert r.latest_seq == 0


def test_h265_is_refused_unless_allowed(camera, ring, source):
    cam = camera(codec="h265")
    r = ring()
    src = source(r, cam.url)
    assert src.proc.wait(60) == EXIT_CONFIG  # retrying cannot fix it
    assert f"cam: {NOT_H264} (it sends hevc)" in src.log()
    assert r.state == FAILED and r.latest_seq == 0
    allowed = ring()
    source(allowed, cam.url, codecs=["h264", "h265"])
    frame = _take(_reader(allowed), 60)
    assert frame.image.shape == (240, 320, 3)


def test_4k_camera_is_scaled_to_1080p(camera, ring, source):
    cam = camera(size=(3840, 2160), fps=5)
    r = ring()
    src = source(r, cam.url)
    frame = _take(_reader(r), 90)
    assert frame.image.shape == (1080, 1920, 3)
    assert "3840x2160 scaled to 1920x1080" in src.log()
    assert frame.image.std() > 10  # a picture, not an empty buffer
