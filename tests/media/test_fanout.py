"""Four applications on one camera: the camera is decoded once, and each application gets
the newest frame whenever it asks, at its own pace (a slow one skips, never lags)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import appkit
import pytest

from panoptes.media import ENDED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FRAMES = 90
# A consumer process: take frames until the ring ends, sleeping its own delay after
# each; print (seq, the frame number read from the clip's counter block) per frame.
CONSUMER = r"""
import json, sys, time
from panoptes.media import ENDED, FrameRing, RingReader
ring = FrameRing.attach(sys.argv[1])
reader = RingReader(ring)
pause = float(sys.argv[2])
print("READY", flush=True)
got, asked = [], 0
while True:
    if not reader.wait(timeout=0.5):
        if ring.state == ENDED and not reader.has_new():
            break
        continue
    asked += 1
    f = reader.take()
    block = int(f.image[2:20, 2:60].mean().round())
    got.append((f.seq, block))
    time.sleep(pause)
print(json.dumps({"got": got, "asked": asked}), flush=True)
"""


def test_four_consumers_one_decode_each_at_its_own_pace(ring, source, tmp_path):
    clip = appkit.make_clip(tmp_path / "clip.mp4", frames=FRAMES)
    r = ring(4 + 2 * 4)
    pauses = [0.0, 0.0, 0.05, 0.25]
    consumers = [
        subprocess.Popen(
            [sys.executable, "-c", CONSUMER, r.name, str(p)], stdout=subprocess.PIPE, text=True
        )
        for p in pauses
    ]
    for c in consumers:
        assert c.stdout.readline().strip() == "READY"
    src = source(r, str(clip), pace=1.0)  # a camera: the clip at its 30 fps
    assert src.proc.wait(120) == 0
    results = []
    for c in consumers:
        out, _ = c.communicate(timeout=60)
        results.append(json.loads(out.strip().splitlines()[-1]))
    # Decoded once: the camera published each frame of the clip once, for all four.
    assert r.state == ENDED and r.latest_seq == FRAMES
    assert f"ended after {FRAMES} frames" in src.log()
    assert r.info()["dropped"] == 0
    for res in results:
        seqs = [s for s, _ in res["got"]]
        assert res["asked"] == len(seqs)  # every get that woke up got a frame
        assert seqs == sorted(set(seqs)), seqs  # never the same or an older frame
        for seq, block in res["got"]:
            # The picture is the one its sequence number says (frame seq-1 of the clip).
            assert abs(block - ((seq - 1) * 7) % 256) <= 6, (seq, block)
        assert seqs[-1] == FRAMES  # each one ends on the newest frame
    slow = [s for s, _ in results[-1]["got"]]
    # The slow one skipped frames instead of falling behind.
    assert len(slow) < FRAMES and any(b - a > 1 for a, b in itertools.pairwise(slow))


def test_a_camera_snapshot_is_its_newest_frame_and_leaves_no_reader(ring, source, tmp_path):
    import cv2
    import numpy as np

    from panoptes.media.snapshot import ring_jpeg

    clip = appkit.make_clip(tmp_path / "clip.mp4", frames=10)
    r = ring()
    assert ring_jpeg(r.name) is None  # nothing published yet
    src = source(r, str(clip), pace=0)
    assert src.proc.wait(60) == 0
    full = cv2.imdecode(np.frombuffer(ring_jpeg(r.name), np.uint8), cv2.IMREAD_COLOR)
    thumb = cv2.imdecode(np.frombuffer(ring_jpeg(r.name, 160), np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == (240, 320, 3) and thumb.shape == (120, 160, 3)
    last = appkit.pattern(9, 320, 240)
    assert np.abs(full.astype(int) - last).mean() < 8  # the newest frame, not an older one
    assert r.info()["readers"] == []
