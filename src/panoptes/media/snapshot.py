"""Snapshots: the newest frame of a ring as a JPEG, for thumbnails of cameras.

Reads like any reader (no copy beyond the JPEG encoding), holds the frame only while
encoding, and leaves the ring as it found it: no reader entry, no wake-up FIFO.
"""

from __future__ import annotations

from panoptes.media import render
from panoptes.media.ring import FrameRing, RingReader


def ring_jpeg(name: str, max_width: int | None = None, quality: int = 80) -> bytes | None:
    """The newest frame in ring ``name`` as JPEG (scaled to ``max_width``); None if none yet.

    Raises FileNotFoundError when there is no such ring.
    """
    ring = FrameRing.attach(name)
    try:
        if ring.latest_seq == 0:
            return None
        reader = RingReader(ring, wake=False)
        try:
            frame = reader.take(newest=True)
            if frame is None:
                return None
            return render.jpeg(render.thumbnail(frame.image, max_width), quality)
        finally:
            reader.close()
    finally:
        ring.close()
