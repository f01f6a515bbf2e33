"""Child processes that do not outlive their parent."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for subprocess: the child gets SIGTERM when its parent dies, even
    by SIGKILL. Linux ties this to the parent *thread* that forked: spawn from a thread
    that lives as long as the child should."""
    with contextlib.suppress(Exception):  # not Linux: the parent cleans up as it can
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
