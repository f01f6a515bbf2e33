"""Media: camera sources, shared-memory frame rings, output sinks.

    ring = FrameRing.create(name, capacity=1920 * 1080 * 3)   # the runtime owns it
    RingWriter(ring).write(bgr_image, extra={"stream_id": "cam"})
    frame = RingReader(FrameRing.attach(name)).take()         # newest frame, no copy

Sources (``python -m panoptes.media.source``) and the sink (``python -m
panoptes.media.sink``) run as their own processes, started by panoptes.runtime.
"""

from panoptes.media.ring import (
    CTL_PAUSE,
    CTL_RUN,
    CTL_STOP,
    ENDED,
    FAILED,
    PAUSED,
    RUNNING,
    STARTING,
    Frame,
    FrameRing,
    RingReader,
    RingWriter,
    segment_name,
    sweep,
)

__all__ = [
    "CTL_PAUSE",
    "CTL_RUN",
    "CTL_STOP",
    "ENDED",
    "FAILED",
    "PAUSED",
    "RUNNING",
    "STARTING",
    "Frame",
    "FrameRing",
    "RingReader",
    "RingWriter",
    "segment_name",
    "sweep",
]
