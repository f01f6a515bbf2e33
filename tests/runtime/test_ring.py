"""The frame ring: newest frame, drops for held slots, private writes, cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from panoptes.media import FrameRing, RingReader, RingWriter, segment_name, sweep
from panoptes.media.ring import SHM_DIR


@pytest.fixture
def ring():
    r = FrameRing.create(segment_name(f"t-{uuid.uuid4().hex[:6]}"), 8 * 8 * 3, 4)
    yield r
    r.destroy()


def img(v: int) -> np.ndarray:
    return np.full((8, 8, 3), v, np.uint8)


def test_readers_share_frames_and_drop_when_slow(ring):
    w = RingWriter(ring)
    a, b = RingReader(FrameRing.attach(ring.name)), RingReader(FrameRing.attach(ring.name))
    w.write(img(1))
    fa = a.take()
    assert fa.image.max() == 1 and a.take() is None
    for v in range(2, 10):
        w.write(img(v))  # b never reads: the producer does not wait for it
    assert b.take().image.max() == 9
    assert a.take().image.max() == 9


def test_held_slots_are_never_overwritten(ring):
    w = RingWriter(ring)
    r = RingReader(FrameRing.attach(ring.name))
    w.write(img(1))
    held = r.take()
    for v in range(2, 30):
        w.write(img(v))
    assert held.image.max() == 1


def test_writes_by_a_reader_stay_private(ring):
    w = RingWriter(ring)
    a, b = RingReader(FrameRing.attach(ring.name)), RingReader(FrameRing.attach(ring.name))
    w.write(img(5))
    fa = a.take()
    fa.image[:] = 200
    assert b.take().image.max() == 5
    w.write(img(6))
    w.write(img(7))
    assert a.take().image.max() == 7  # its own copies are dropped on the next frame


def test_sweep_removes_rings_of_dead_creators():
    code = (
        "from panoptes.media import FrameRing, segment_name;"
        "r = FrameRing.create(segment_name('leak'), 64, 2); print(r.name)"
    )
    name = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (SHM_DIR / name).exists()
    assert name in sweep()
    assert not (SHM_DIR / name).exists()
    assert os.getpid()  # our own rings are kept (see the fixture's destroy)
