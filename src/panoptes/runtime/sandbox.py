"""Start a code node in its own mount namespace, so its absolute paths are private.

Application code opens ``/panorama/...``, writes ``/opt/aws/panorama/logs`` and keeps
state in ``/opt/aws/panorama/storage``: absolute paths that cannot be rewritten from
outside. Each code node therefore runs in a private mount namespace where those
three paths are bind mounts of its own folders; the rest of the file system (the
runtime's Python, /dev/shm frame rings, the model servers' sockets) is shared.

Modes, in order of preference:

1. ``namespace``: this module, run as ``python -m panoptes.runtime.sandbox CONFIG``:
   unshare(CLONE_NEWNS), make ``/`` private, bind, chdir ``/``, exec the entry.
   Needs CAP_SYS_ADMIN (root, as on an appliance).
2. ``bwrap``: bubblewrap does the same with user namespaces, for non-root users.
3. neither: the runtime refuses to start the node and says how to get one of them;
   there is no unisolated fallback, because two applications (or the host) would
   share ``/panorama`` and silently read each other's files.

The mount points are created on the host file system if missing (empty folders:
``/panorama``, ``/opt/aws/panorama/{logs,storage}``); that is the only trace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import sys

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_BIND = 0x1000
EXIT_NO_NAMESPACE = 97


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter(binds: list[tuple[str, str]]) -> None:
    """Move this process into a new mount namespace with ``binds`` (source, target)."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Without this, mounts below would propagate back to the host's namespace.
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for source, target in binds:
        os.makedirs(source, exist_ok=True)
        os.makedirs(target, exist_ok=True)
        _check(
            libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None),
            f"bind {source} on {target}",
        )


def available() -> str | None:
    """The isolation mode this machine supports: "namespace", "bwrap" or None."""
    probe = subprocess.run(
        [sys.executable, "-m", "panoptes.runtime._sandbox_main", "--probe"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode == 0:
        return "namespace"
    if shutil.which("bwrap"):
        ok = subprocess.run(
            ["bwrap", "--dev-bind", "/", "/", "--", "true"], capture_output=True, timeout=30
        )
        if ok.returncode == 0:
            return "bwrap"
    return None


def command(mode: str, binds: list[tuple[str, str]], argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` isolated in ``mode``."""
    if mode == "namespace":
        config = json.dumps({"binds": binds, "argv": argv})
        return [sys.executable, "-m", "panoptes.runtime._sandbox_main", config]
    if mode == "bwrap":
        cmd = ["bwrap", "--dev-bind", "/", "/", "--die-with-parent"]
        for source, target in binds:
            cmd += ["--bind", source, target]
        return [*cmd, "--chdir", "/", "--", *argv]
    raise ValueError(f"unknown isolation mode {mode!r}")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--probe":
        try:
            enter([])
        except OSError as exc:
            print(exc, file=sys.stderr)
            return EXIT_NO_NAMESPACE
        return 0
    config = json.loads(argv[0])
    try:
        enter([tuple(b) for b in config["binds"]])
    except OSError as exc:
        print(f"panoptes: cannot isolate the application: {exc}", file=sys.stderr, flush=True)
        return EXIT_NO_NAMESPACE
    os.chdir("/")
    args = config["argv"]
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        print(f"panoptes: cannot start {args[0]}: {exc}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
