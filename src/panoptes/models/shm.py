"""Shared-memory segments for the model server, with the pitfalls handled.

* Python 3.11's resource_tracker registers every segment a process *attaches* to and
  unlinks it when that process exits, although its creator still uses it (fixed in
  3.13 with track=False). The server therefore maps client segments through
  /dev/shm directly, without the tracker.
* A crashed process leaks its segments until reboot. Names carry a per-server tag and
  the creator's pid, so the server can remove those whose creator is gone.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from multiprocessing import resource_tracker, shared_memory

from panoptes.shmem import SHM_DIR, sweep_dead

PREFIX = "pnpt"


def segment_prefix(tag: str) -> str:
    return f"{PREFIX}_{tag}_"


def segment_name(tag: str, pid: int, serial: int) -> str:
    return f"{segment_prefix(tag)}{pid}_{serial}"


class Segment:
    """A segment this process created and is responsible for unlinking."""

    def __init__(self, name: str, size: int) -> None:
        self._shm = shared_memory.SharedMemory(name=name, create=True, size=size)
        self.name = name
        self.size = size

    @property
    def buf(self) -> memoryview:
        return self._shm.buf

    def destroy(self) -> None:
        with contextlib.suppress(BufferError):  # a caller still holds a view: unlink anyway
            self._shm.close()
        try:
            self._shm.unlink()
        except FileNotFoundError:  # swept already; still forget it, or the tracker warns
            resource_tracker.unregister(self._shm._name, "shared_memory")


def attach(name: str) -> mmap.mmap:
    """Map an existing segment without registering it with the resource tracker."""
    fd = os.open(SHM_DIR / name, os.O_RDWR)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)  # the mapping keeps the memory; the descriptor is not needed


def sweep(tag: str) -> list[str]:
    """Unlink this server's segments whose creating process has died; returns their names."""
    return sweep_dead(segment_prefix(tag))
