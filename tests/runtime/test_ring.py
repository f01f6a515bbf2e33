"""The frame ring: newest frame, drops for held slots, private writes, cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from panoptes.media import FrameRing, RingReader, RingWriter, segment_name, sweep
from panoptes.media import ring as ring_mod
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


def test_a_blocked_wait_wakes_when_a_frame_is_published(ring, monkeypatch):
    monkeypatch.setattr(ring_mod, "WAIT_MAX", 600.0)  # no periodic look: only the wake-up
    w = RingWriter(ring)
    r = RingReader(FrameRing.attach(ring.name))
    assert r.wake_fd is not None
    w.write(img(1))
    assert r.take().image.max() == 1
    got: list = []
    waiting = threading.Event()

    def reader() -> None:
        waiting.set()
        got.append(r.take() if r.wait(timeout=60) else None)

    t = threading.Thread(target=reader)
    t.start()
    waiting.wait()
    w.write(img(2))
    t.join(60)
    assert not t.is_alive() and got[0] is not None and got[0].image.max() == 2
    assert r.wait(timeout=0) is False  # nothing newer: the wake-up was consumed


def test_a_dead_or_stuck_reader_does_not_stall_the_producer(ring):
    code = (
        "import os, signal, sys\n"
        "from panoptes.media import FrameRing, RingReader\n"
        "r = RingReader(FrameRing.attach(sys.argv[1]))\n"
        "r.take()\n"
        "print(r._token, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"  # dies holding a slot, FIFO left behind
    )
    w = RingWriter(ring)
    w.write(img(1))
    out = subprocess.run([sys.executable, "-c", code, ring.name], capture_output=True, text=True)
    dead_fifo = ring._wake_path(int(out.stdout))
    assert dead_fifo.exists()
    stuck = RingReader(FrameRing.attach(ring.name))  # never drains: its FIFO fills up
    while True:
        try:
            os.write(stuck.wake_fd, b"x" * 4096)
        except BlockingIOError:
            break
    live = RingReader(FrameRing.attach(ring.name))
    for v in range(2, 12):
        assert w.write(img(v)) is not None
    assert live.wait(timeout=10) and live.take().image.max() == 11
    assert {r["pid"] for r in ring.info()["readers"]} == {os.getpid()}  # the dead one swept
    assert not dead_fifo.exists()
    stuck.close()
    w.write(img(12))
    assert live.wait(timeout=10) and live.take().image.max() == 12
    w.close()


def test_in_order_ring_delivers_every_frame_and_waits_for_the_slowest_reader(ring):
    ring.in_order = True
    w = RingWriter(ring)
    r = RingReader(FrameRing.attach(ring.name))
    w.write(img(1))
    assert r.take().image.max() == 1  # the first take is the newest, as always
    written = threading.Event()

    def produce() -> None:
        for v in range(2, 12):
            view = w.begin(8, 8, wait=60)
            view[:] = v
            w.commit(8, 8)
        written.set()

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while len(got) < 10:
        assert r.wait(timeout=60)
        got.append(int(r.take().image.max()))
    t.join(60)
    assert written.is_set() and got == list(range(2, 12))  # none skipped, none repeated
    assert ring.info()["dropped"] == 0


def test_in_order_ring_keeps_the_first_frames_for_a_reader_that_has_not_taken_yet(ring):
    """A consumer that attached but is still starting (an app loading its model, the
    output sink) misses nothing: the producer waits, and its first take is the oldest."""
    ring.in_order = True
    w = RingWriter(ring)
    r = RingReader(FrameRing.attach(ring.name))
    total = 3 * ring.nslots

    def produce() -> None:
        for v in range(1, total + 1):
            assert w.write(img(v)) is not None

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.3)  # the reader is busy starting up while the producer fills the ring
    got = []
    while len(got) < total:
        assert r.wait(timeout=60)
        got.append(int(r.take().image.max()))
    t.join(60)
    assert got == list(range(1, total + 1))
    assert r.take(newest=True) is None  # nothing newer than what it took
    w.write(img(total + 1))
    w.write(img(total + 2))
    assert r.take(newest=True).image.max() == total + 2  # a look skips to the newest


def test_in_order_ring_overwrites_after_the_wait_so_a_stuck_reader_only_slows_it(ring):
    ring.in_order = True
    w = RingWriter(ring)
    stuck = RingReader(FrameRing.attach(ring.name))
    w.write(img(1))
    stuck.take()
    for v in range(2, 8):
        view = w.begin(8, 8, wait=0.05)  # the stuck reader never takes: overwritten
        assert view is not None
        view[:] = v
        w.commit(8, 8)
    assert stuck.take().image.max() > 2  # it skipped frames instead of blocking the ring
