"""A frame ring in shared memory: one producer, many readers, newest frame wins.

Layout of one segment (``/dev/shm/<name>``)::

    [header 4 KiB: counters, state, control, reader table][slot 0][slot 1]...
    slot = [meta 16 KiB: seq, size, timestamp, JSON extras][pixels, page aligned]

Why it is built this way:

* The producer never waits for a reader. Readers *hold* slots (a bit mask per reader
  in the header); the producer writes into the lowest slot that is neither held nor
  the latest one, and drops the frame if there is none (counted). A slow reader
  therefore only ever misses frames, it never stalls the camera or other readers.
* No copies per reader: readers map the pixels privately (MAP_PRIVATE). Reading
  shares the producer's pages; an application that draws into ``media.image`` gets
  its own copy of only the pages it touches (copy-on-write by the kernel). Before a
  slot is handed out again, ``madvise(MADV_DONTNEED)`` drops those private pages so
  the reader sees the producer's new frame.
* Readers sleep until woken, never on a timer: each reader makes a FIFO next to the
  segment (``<name>.wake<token>``), opens it read-write (so it never sees EOF) and
  puts the token in its reader-table entry. After publishing a frame the producer
  writes one byte, non-blocking, to every reader's FIFO: a full pipe (a reader that
  does not drain) is ignored, and a dead reader's FIFO fails the write (EPIPE/ENXIO),
  so its descriptor is closed and its entry swept. The producer never blocks on it.
  ``wait_any`` blocks in ``poll`` on several readers' FIFOs at once.
* The short critical sections (choose a slot, publish, take the latest) run under
  ``flock`` on the segment: a system call, so it is also the memory barrier the two
  sides need, and the kernel releases it when a process dies holding it.
* Segments are created with ``os.open`` (never ``multiprocessing.shared_memory``):
  Python 3.11's resource tracker would unlink segments that readers merely attach to.
  Names carry the creator's pid so ``sweep`` can remove those left by a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import select
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from panoptes.shmem import SHM_DIR, pid_alive, sweep_dead

PREFIX = "pnpt_ring_"
MAGIC = 0x50524E47  # "PRNG"
VERSION = 2
PAGE = mmap.PAGESIZE
HEADER = 4096
META = 16384
MAX_READERS = 32
MAX_SLOTS = 64  # the hold masks are 64-bit
MAX_EXTRA = META - 128  # JSON extras (stream id, uri, annotations) per slot

# Producer state, written by the producer (or the runtime for a dead one).
STARTING, RUNNING, PAUSED, ENDED, FAILED = 0, 1, 2, 3, 4
STATE_NAMES = {STARTING: "starting", RUNNING: "running", PAUSED: "paused", ENDED: "ended"}
STATE_NAMES[FAILED] = "failed"
# Control word, written by the runtime, obeyed by the producer.
CTL_RUN, CTL_PAUSE, CTL_STOP = 0, 1, 2

# Header flags. IN_ORDER: readers take the oldest frame still in the ring that they have
# not taken rather than the newest, and the producer does not overwrite a frame some
# reader has not taken yet (lossless playback of a file; never for a live camera).
IN_ORDER = 1
# How long the producer of an IN_ORDER ring waits for its slowest reader before it
# overwrites a frame anyway (a stuck reader only slows the producer down).
READER_PATIENCE = 5.0

# header: magic, version, nslots, flags, capacity, latest_seq, latest_slot,
#         state, control, writer_pid, dropped, heartbeat, fps, width, height
_HDR = struct.Struct("<IIIIQQqIIQQddII")
_READERS_AT = 256
_READER = struct.Struct("<QQQQQ")  # pid, held mask, last seq, frames taken, wake token
# slot meta: seq, width, height, ts_sec, ts_usec, batch, index, count, extra_len
_SLOT = struct.Struct("<QIIqqQIII")
assert _READERS_AT + MAX_READERS * _READER.size <= HEADER


def _page_up(n: int) -> int:
    return -(-n // PAGE) * PAGE


def segment_name(tag: str, creator_pid: int | None = None) -> str:
    safe = "".join(c if c.isalnum() else "-" for c in tag)[:120]
    return f"{PREFIX}{creator_pid or os.getpid()}_{safe}"


def sweep() -> list[str]:
    """Unlink rings whose creating process is gone (left behind by a crash)."""
    return sweep_dead(PREFIX)


@dataclass
class Frame:
    """One slot handed to a reader: pixels (a view, no copy) and metadata."""

    image: np.ndarray
    seq: int
    slot: int
    time_stamp: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)
    batch: int = 0
    index: int = 0
    count: int = 1


class FrameRing:
    """A mapped ring segment. ``create`` makes one; ``attach`` opens an existing one."""

    def __init__(self, name: str, fd: int, created: bool) -> None:
        self.name = name
        self._fd = fd
        self._created = created
        size = os.fstat(fd).st_size
        self._shared = mmap.mmap(fd, size)
        head = _HDR.unpack_from(self._shared, 0)
        if head[0] != MAGIC or head[1] != VERSION:
            self._shared.close()
            os.close(fd)
            raise ValueError(f"{name} is not a Panoptes frame ring")
        self.nslots = head[2]
        self.capacity = head[4]
        self.stride = META + _page_up(self.capacity)
        self._private: mmap.mmap | None = None
        self._tlock = threading.Lock()  # flock does not exclude threads of one process

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, capacity: int, nslots: int = 8) -> FrameRing:
        if not 2 <= nslots <= MAX_SLOTS:
            raise ValueError(f"nslots must be 2..{MAX_SLOTS}")
        capacity = int(capacity)
        size = HEADER + nslots * (META + _page_up(capacity))
        fd = os.open(SHM_DIR / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.ftruncate(fd, size)  # tmpfs allocates pages only when they are written
            with mmap.mmap(fd, HEADER) as m:
                _HDR.pack_into(
                    m, 0, MAGIC, VERSION, nslots, 0, capacity, 0, -1, STARTING, CTL_RUN,
                    0, 0, 0.0, 0.0, 0, 0,
                )  # fmt: skip
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(SHM_DIR / name)
            raise
        return cls(name, fd, created=True)

    @classmethod
    def attach(cls, name: str) -> FrameRing:
        fd = os.open(SHM_DIR / name, os.O_RDWR)
        return cls(name, fd, created=False)

    def close(self) -> None:
        for m in (self._private, self._shared):
            if m is not None:
                with contextlib.suppress(BufferError, ValueError):
                    m.close()
        self._private = None
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1

    def unlink(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(SHM_DIR / self.name)
        for fifo in SHM_DIR.glob(self.name + ".wake*"):  # of readers that died
            with contextlib.suppress(FileNotFoundError):
                fifo.unlink()

    def _wake_path(self, token: int) -> Path:
        return SHM_DIR / f"{self.name}.wake{token:x}"

    def _readers(self) -> list[tuple[int, int, int, int, int]]:
        end = _READERS_AT + MAX_READERS * _READER.size
        return list(_READER.iter_unpack(self._shared[_READERS_AT:end]))

    def destroy(self) -> None:
        self.close()
        self.unlink()

    # -- header fields -----------------------------------------------------------------

    def _hdr(self) -> tuple:
        return _HDR.unpack_from(self._shared, 0)

    def _set(self, index: int, value: Any) -> None:
        fields = list(self._hdr())
        fields[index] = value
        _HDR.pack_into(self._shared, 0, *fields)

    @property
    def latest_seq(self) -> int:
        return struct.unpack_from("<Q", self._shared, 24)[0]

    @property
    def state(self) -> int:
        return self._hdr()[7]

    @state.setter
    def state(self, value: int) -> None:
        with self._locked():
            self._set(7, value)

    @property
    def in_order(self) -> bool:
        return bool(self._hdr()[3] & IN_ORDER)

    @in_order.setter
    def in_order(self, value: bool) -> None:
        with self._locked():
            flags = self._hdr()[3]
            self._set(3, flags | IN_ORDER if value else flags & ~IN_ORDER)

    def _slot_seq(self, slot: int) -> int:
        return struct.unpack_from("<Q", self._shared, self._slot_at(slot))[0]

    def _untaken(self) -> int:
        """IN_ORDER: the mask of slots holding a frame that a reader has yet to take.

        A reader that has not taken anything yet wants every frame still in the ring
        (its first take is the oldest): none is lost while it starts up.
        """
        lasts = [last for pid, _, last, _, _ in self._readers() if pid]
        if not lasts:
            return 0
        oldest = min(lasts)
        mask = 0
        for s in range(self.nslots):
            if self._slot_seq(s) > oldest:
                mask |= 1 << s
        return mask

    @property
    def control(self) -> int:
        return self._hdr()[8]

    @control.setter
    def control(self, value: int) -> None:
        with self._locked():
            self._set(8, value)

    def info(self) -> dict[str, Any]:
        h = self._hdr()
        readers = []
        for pid, mask, last, taken, _ in self._readers():
            if pid:
                readers.append({"pid": pid, "held": mask, "last_seq": last, "taken": taken})
        return {
            "latest_seq": h[5],
            "state": STATE_NAMES.get(h[7], "?"),
            "control": h[8],
            "writer_pid": h[9],
            "dropped": h[10],
            "heartbeat": h[11],
            "fps": h[12],
            "width": h[13],
            "height": h[14],
            "readers": readers,
        }

    @contextlib.contextmanager
    def _locked(self):
        with self._tlock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot_at(self, slot: int) -> int:
        return HEADER + slot * self.stride

    def _held(self) -> int:
        mask = 0
        for pid, held, _, _, _ in self._readers():
            if pid:
                mask |= held
        return mask

    def _sweep_readers(self) -> None:
        for i in range(MAX_READERS):
            at = _READERS_AT + i * _READER.size
            pid, _, _, _, token = _READER.unpack_from(self._shared, at)
            if pid and not pid_alive(pid):
                _READER.pack_into(self._shared, at, 0, 0, 0, 0, 0)
                if token:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._wake_path(token))


class RingWriter:
    """The producer side. ``begin`` gives a pixel view to fill, ``commit`` publishes it."""

    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring
        self._seq = ring.latest_seq
        self._pending: int | None = None
        self._wake: dict[int, tuple[int, int | None]] = {}  # entry -> (token, fifo fd)
        with ring._locked():
            ring._set(9, os.getpid())

    def close(self) -> None:
        for _, fd in self._wake.values():
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake.clear()

    def _notify(self) -> None:
        """Wake every reader: one byte into its FIFO, never blocking.

        A full FIFO (the reader is busy or never waits) already holds a wake-up, so
        EAGAIN is ignored. A FIFO nobody has open any more (ENXIO on open, EPIPE on
        write) belongs to a reader that is gone: its descriptor is closed, and its
        entry swept if the process died.
        """
        gone = False
        for i, (pid, _, _, _, token) in enumerate(self.ring._readers()):
            token = token if pid else 0
            known, fd = self._wake.get(i, (0, None))
            if known != token:
                if fd is not None:
                    os.close(fd)
                fd = None
                if token:
                    try:
                        fd = os.open(
                            self.ring._wake_path(token),
                            os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC,
                        )
                    except OSError:  # ENXIO: no reader has it open; ENOENT: removed
                        gone = True
                self._wake[i] = (token, fd)
            if fd is None:
                continue
            try:
                os.write(fd, b"\x01")
            except BlockingIOError:
                pass  # the FIFO is full: the reader has wake-ups pending
            except OSError:  # EPIPE: the reader closed it or died
                os.close(fd)
                self._wake[i] = (token, None)
                gone = True
        if gone:
            with self.ring._locked():
                self.ring._sweep_readers()

    def set_info(self, *, fps: float | None = None, size: tuple[int, int] | None = None) -> None:
        with self.ring._locked():
            if fps is not None:
                self.ring._set(12, float(fps))
            if size is not None:
                self.ring._set(13, size[0])
                self.ring._set(14, size[1])

    def heartbeat(self) -> None:
        struct.pack_into("<d", self.ring._shared, 64, time.time())

    def begin(
        self, width: int, height: int, channels: int = 3, wait: float = READER_PATIENCE
    ) -> np.ndarray | None:
        """A writable HxWxC view into a free slot, or None when every slot is held.

        ``wait`` (seconds): on an IN_ORDER ring, how long to wait for readers to take
        the frames they have not taken yet before overwriting one anyway (other rings
        never wait: the newest frame wins).
        """
        r = self.ring
        if width * height * channels > r.capacity:
            raise ValueError(f"{width}x{height}x{channels} does not fit a {r.capacity} byte slot")
        deadline = time.monotonic() + wait
        nap = 0.0001
        while True:
            with r._locked():
                in_order = r._hdr()[3] & IN_ORDER and time.monotonic() < deadline
                slot = self._free_slot(bool(in_order))
                if slot is None and not in_order:
                    r._set(10, r._hdr()[10] + 1)
                    return None
                if slot is not None:
                    # Until commit, no reader may take this slot's old frame (its
                    # pixels are being replaced): seq 0 is never newer than anything.
                    struct.pack_into("<Q", r._shared, r._slot_at(slot), 0)
            if slot is not None:
                break
            # Readers poll nothing back to us: a short, growing nap (the wait is rare:
            # only when every reader is a whole ring behind).
            self.heartbeat()
            time.sleep(nap)
            nap = min(nap * 2, 0.002)
        self._pending = slot
        at = r._slot_at(slot) + META
        return np.ndarray((height, width, channels), np.uint8, r._shared, at)

    def _free_slot(self, in_order: bool) -> int | None:
        r = self.ring
        for attempt in range(2):
            latest = r._hdr()[6]
            busy = r._held() | (1 << latest if latest >= 0 else 0)
            if in_order:
                busy |= r._untaken()
            free = [s for s in range(r.nslots) if not busy >> s & 1]
            if free:
                # The lowest free slot: untouched slots never get tmpfs pages at all.
                return free[0]
            if attempt == 0:
                r._sweep_readers()  # a reader that died keeps its holds until swept
        return None

    def commit(
        self,
        width: int,
        height: int,
        time_stamp: tuple[int, int] | None = None,
        extra: dict[str, Any] | None = None,
        batch: int = 0,
        index: int = 0,
        count: int = 1,
    ) -> int:
        r, slot = self.ring, self._pending
        if slot is None:
            raise RuntimeError("commit without begin")
        self._pending = None
        if time_stamp is None:
            now = time.time()
            time_stamp = (int(now), int((now % 1) * 1e6))
        blob = json.dumps(extra or {}, separators=(",", ":")).encode()
        if len(blob) > MAX_EXTRA:
            blob = json.dumps({k: v for k, v in (extra or {}).items() if k != "ann"}).encode()
        at = r._slot_at(slot)
        with r._locked():
            self._seq = max(self._seq, r.latest_seq) + 1
            _SLOT.pack_into(
                r._shared, at, self._seq, width, height, time_stamp[0], time_stamp[1],
                batch, index, count, len(blob),
            )  # fmt: skip
            r._shared[at + _SLOT.size : at + _SLOT.size + len(blob)] = blob
            fields = list(r._hdr())
            fields[5], fields[6] = self._seq, slot
            if fields[7] in (STARTING, PAUSED):
                fields[7] = RUNNING
            _HDR.pack_into(r._shared, 0, *fields)
        self.heartbeat()
        self._notify()
        return self._seq

    def write(self, image: np.ndarray, **meta: Any) -> int | None:
        """Copy ``image`` (HxWx3 uint8) into the ring; None if the frame was dropped."""
        h, w = image.shape[:2]
        c = image.shape[2] if image.ndim == 3 else 1
        view = self.begin(w, h, c)
        if view is None:
            return None
        np.copyto(view, image.reshape(h, w, c))
        return self.commit(w, h, **meta)


class RingReader:
    """One reader: takes the newest frame and holds it (and the one before) until replaced.

    Holding the previous frame too keeps an image valid while an application thread
    still works on it after the next ``take``.
    """

    HOLD = 2

    def __init__(self, ring: FrameRing, wake: bool = True) -> None:
        self.ring = ring
        self.last_seq = 0
        self._holds: list[int] = []
        self.wake_fd: int | None = None  # readable when the producer published a frame
        self._token = 0
        if wake:
            self._make_fifo()
        self._entry = self._register()
        r = ring
        if r._private is None:
            r._private = mmap.mmap(r._fd, os.fstat(r._fd).st_size, access=mmap.ACCESS_COPY)

    def _make_fifo(self) -> None:
        """The FIFO the producer wakes this reader through (none: callers poll)."""
        r = self.ring
        token = int.from_bytes(os.urandom(8), "little") or 1
        path = r._wake_path(token)
        try:
            os.mkfifo(path, 0o600)
            os.chmod(path, os.fstat(r._fd).st_mode & 0o777)  # whoever may write the ring
            # Read-write: this process is always a writer too, so it never sees EOF.
            self.wake_fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            self._token = token
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _register(self) -> int:
        r = self.ring
        with r._locked():
            r._sweep_readers()
            for i in range(MAX_READERS):
                at = _READERS_AT + i * _READER.size
                if _READER.unpack_from(r._shared, at)[0] == 0:
                    _READER.pack_into(r._shared, at, os.getpid(), 0, 0, 0, self._token)
                    return at
        self._close_fifo()
        raise RuntimeError(f"{r.name}: more than {MAX_READERS} readers")

    def _close_fifo(self) -> None:
        if self.wake_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.wake_fd)
            self.wake_fd = None
        if self._token:
            with contextlib.suppress(OSError):
                os.unlink(self.ring._wake_path(self._token))
            self._token = 0

    def close(self) -> None:
        if self._entry >= 0:
            with contextlib.suppress(ValueError, OSError), self.ring._locked():
                _READER.pack_into(self.ring._shared, self._entry, 0, 0, 0, 0, 0)
            self._entry = -1
        self._close_fifo()

    def has_new(self) -> bool:
        return self.ring.latest_seq > self.last_seq

    def drain(self) -> None:
        """Consume pending wake-ups (call before checking ``has_new``, then wait)."""
        if self.wake_fd is not None:
            with contextlib.suppress(BlockingIOError):
                while len(os.read(self.wake_fd, 4096)) == 4096:
                    pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a frame newer than the last taken is published; False on timeout."""
        return wait_any([self], timeout)

    def take(self, newest: bool = False) -> Frame | None:
        """The newest frame if it is newer than the last one taken, else None; on an
        IN_ORDER ring the oldest one not taken yet, unless ``newest`` (a look at the
        camera, not a consumer of every frame)."""
        r = self.ring
        with r._locked():
            h = r._hdr()
            seq, slot = h[5], h[6]
            if seq <= self.last_seq or slot < 0:
                return None
            if h[3] & IN_ORDER and not newest:
                seq, slot = min(
                    (q, s) for s in range(r.nslots) if (q := r._slot_seq(s)) > self.last_seq
                )
            holds = [*[s for s in self._holds if s != slot][-(self.HOLD - 1) :], slot]
            mask = 0
            for s in holds:
                mask |= 1 << s
            _, _, _, taken, token = _READER.unpack_from(r._shared, self._entry)
            _READER.pack_into(r._shared, self._entry, os.getpid(), mask, seq, taken + 1, token)
            self._holds = holds
            self.last_seq = seq
        return self._frame(slot)

    def _frame(self, slot: int) -> Frame:
        r = self.ring
        at = r._slot_at(slot)
        seq, w, h, sec, usec, batch, index, count, n = _SLOT.unpack_from(r._shared, at)
        extra = json.loads(bytes(r._shared[at + _SLOT.size : at + _SLOT.size + n]) or b"{}")
        pix = at + META
        assert r._private is not None
        # Drop pages this process copied (drew into) earlier so it sees the new frame.
        r._private.madvise(mmap.MADV_DONTNEED, pix, _page_up(w * h * 3))
        image = np.ndarray((h, w, 3), np.uint8, r._private, pix)
        return Frame(image, seq, slot, (sec, usec), extra, batch, index, count)

    def take_all(self) -> list[Frame]:
        """Every frame newer than the last taken that is still in the ring, oldest first.

        For the output sink: it wants each batch an application put, not only the
        newest frame. Frames overwritten before it looked are skipped (dropped).
        """
        r = self.ring
        with r._locked():
            found = []
            for slot in range(r.nslots):
                seq = struct.unpack_from("<Q", r._shared, r._slot_at(slot))[0]
                if seq > self.last_seq:
                    found.append((seq, slot))
            if not found:
                return []
            found.sort()
            mask = 0
            for _, s in found:
                mask |= 1 << s
            _, _, _, taken, token = _READER.unpack_from(r._shared, self._entry)
            newest = found[-1][0]
            _READER.pack_into(r._shared, self._entry, os.getpid(), mask, newest, taken + 1, token)
            self._holds = [s for _, s in found]
            self.last_seq = newest
        return [self._frame(s) for _, s in found]

    def release(self) -> None:
        """Give back every held slot (the frames must not be used after this)."""
        with self.ring._locked():
            pid, _, last, taken, token = _READER.unpack_from(self.ring._shared, self._entry)
            _READER.pack_into(self.ring._shared, self._entry, pid, 0, last, taken, token)
        self._holds = []


# Without a FIFO (one could not be made) a waiting reader looks at its ring this often.
POLL_NO_FIFO = 0.002
# Even with FIFOs, look at the rings now and then: a belt for a missed wake-up.
WAIT_MAX = 0.25


def wait_any(readers: list[RingReader], timeout: float | None = None) -> bool:
    """Block until one of ``readers`` has a new frame; False when ``timeout`` passed.

    Pending wake-ups are drained before the rings are looked at, and the producer
    writes its byte only after publishing, so a frame published at any point after
    the look still wakes the ``poll``: no wake-up is lost.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    fifo_for_all = True
    for r in readers:
        if r.wake_fd is None:
            fifo_for_all = False
        else:
            poller.register(r.wake_fd, select.POLLIN)
    cap = WAIT_MAX if fifo_for_all else POLL_NO_FIFO
    while True:
        for r in readers:
            r.drain()
        if any(r.has_new() for r in readers):
            return True
        wait = cap
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait = min(wait, left)
        poller.poll(max(1, int(wait * 1000 + 0.999)))
