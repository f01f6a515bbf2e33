"""Shared-memory segments in /dev/shm, named ``PREFIX<creator pid>_<rest>``.

Frame rings (media/) and model tensors (models/) both name their segments after the
process that created them, so a segment whose creator died (a crash, a kill -9) can
be found and unlinked instead of filling /dev/shm.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (another user's process counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead(prefix: str) -> list[str]:
    """Unlink ``PREFIX<pid>_...`` segments whose creating process is gone; their names."""
    removed: list[str] = []
    if not SHM_DIR.is_dir():
        return removed
    for path in SHM_DIR.glob(prefix + "*"):
        pid = path.name[len(prefix) :].split("_", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed
