"""Start a code node in its own mount namespace, so its absolute paths are private.

Application code opens ``/panorama/...``, writes ``/opt/aws/panorama/logs`` and keeps
state in ``/opt/aws/panorama/storage``: absolute paths that cannot be rewritten from
outside. Each code node therefore runs in a private mount namespace where those
three paths are bind mounts of its own folders; the rest of the file system (the
runtime's Python, /dev/shm frame rings, the model servers' sockets) is shared.

The host's ``/`` is never written to. Binding onto ``/panorama`` needs a directory
there, and creating one would leave a trace on the host (and, as a non-root user,
fail). Instead the node gets a new root: an empty tmpfs in which every entry of the
host's ``/`` is bind-mounted back (symlinks such as ``/bin -> usr/bin`` are copied),
except the directories on the way to the private paths: those are made in the tmpfs
("shadowed"), again with their host entries bound back, so ``/opt/wheels`` stays
visible beside the new ``/opt/aws/panorama``. ``root_plan`` computes this once;
both modes carry it out.

Modes, in order of preference:

1. ``namespace``: ``python -m panoptes.runtime._sandbox_main CONFIG``: unshare the
   mount namespace, make ``/`` private, build the new root on a tmpfs mounted on the
   node's own folder, chroot into it, exec the entry. Needs CAP_SYS_ADMIN (root, as
   on an appliance).
2. ``bwrap``: bubblewrap builds the same root (``--dir``, ``--symlink``, ``--dev-bind``)
   with user namespaces, for non-root users (``apt-get install bubblewrap``).
3. neither: the runtime refuses to start the node and says how to get one of them;
   there is no unisolated fallback, because two applications (or the host) would
   share ``/panorama`` and silently read each other's files.

Files an application creates elsewhere under ``/`` land in its tmpfs root and vanish
with it (a container's writable layer behaved alike); ``/tmp`` and the rest of the
host's entries are the host's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import PurePosixPath

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_BIND = 0x1000
MNT_DETACH = 2
EXIT_NO_NAMESPACE = 97
MODES = ("namespace", "bwrap")

# One step of building the new root: ("dir", path), ("symlink", target, path), or
# ("bind", host source, path).
Step = tuple[str, ...]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def root_plan(binds: list[tuple[str, str]], host_root: str = "/") -> list[Step]:
    """The steps that make a new root: the host's entries, plus ``binds`` (source,
    target) at their targets, creating only inside the new root."""
    targets = {str(PurePosixPath(t)): s for s, t in binds}
    steps: list[Step] = []

    def host(path: str) -> str:
        return os.path.join(host_root, path.lstrip("/"))

    def visit(path: str) -> None:
        """``path`` is a directory of the new root on the way to a target."""
        wanted = {t for t in targets if t.startswith(path.rstrip("/") + "/")}
        ways = {PurePosixPath(t).relative_to(path).parts[0] for t in wanted}
        listing = host(path)
        names = sorted(os.listdir(listing)) if os.path.isdir(listing) else []
        for name in names:
            if name in ways:
                continue
            entry = os.path.join(path, name)
            if os.path.islink(host(entry)):
                steps.append(("symlink", os.readlink(host(entry)), entry))
            else:
                steps.append(("bind", host(entry), entry))
        for name in sorted(ways):
            entry = os.path.join(path, name)
            if entry in targets:
                steps.append(("bind", targets[entry], entry))
            else:
                steps.append(("dir", entry))
                visit(entry)

    visit("/")
    return steps


def _touch_mount_point(source: str, dest: str) -> None:
    if os.path.isdir(source):
        os.makedirs(dest, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "a"):
            pass


def enter(binds: list[tuple[str, str]], new_root: str) -> None:
    """Move this process into a new mount namespace and root (see the module doc);
    ``new_root`` is an empty folder of the runtime's, where the tmpfs is mounted."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Without this, mounts below would propagate back to the host's namespace.
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for source, _ in binds:
        os.makedirs(source, exist_ok=True)
    steps = root_plan(binds)
    os.makedirs(new_root, exist_ok=True)
    base = new_root.encode()
    _check(libc.mount(b"tmpfs", base, b"tmpfs", 0, b"mode=0755"), f"tmpfs on {new_root}")
    for step in steps:
        dest = os.path.join(new_root, step[-1].lstrip("/"))
        if step[0] == "dir":
            os.makedirs(dest, exist_ok=True)
        elif step[0] == "symlink":
            os.symlink(step[1], dest)
        elif os.path.lexists(step[1]):  # a host entry may vanish since it was listed
            _touch_mount_point(step[1], dest)
            _check(
                libc.mount(step[1].encode(), dest.encode(), None, MS_BIND | MS_REC, None),
                f"bind {step[1]} on {step[-1]}",
            )
    os.chroot(new_root)
    os.chdir("/")
    # The recursive bind of the host folder that holds new_root copied the half-built
    # root into itself; that copy is of no use inside, so it is detached.
    libc.umount2(new_root.encode(), MNT_DETACH)


def available() -> str | None:
    """The isolation mode this machine supports: "namespace", "bwrap" or None."""
    with tempfile.TemporaryDirectory(prefix="pnpt-probe-") as scratch:
        probe = subprocess.run(
            [sys.executable, "-m", "panoptes.runtime._sandbox_main", "--probe", scratch],
            capture_output=True,
            timeout=30,
        )
    if probe.returncode == 0:
        return "namespace"
    return "bwrap" if bwrap_works() else None


def bwrap_works() -> bool:
    """bubblewrap is installed and may make namespaces here."""
    if not shutil.which("bwrap"):
        return False
    ok = subprocess.run(
        ["bwrap", "--dev-bind", "/", "/", "--", "true"], capture_output=True, timeout=30
    )
    return ok.returncode == 0


def command(
    mode: str, binds: list[tuple[str, str]], argv: list[str], new_root: str = ""
) -> list[str]:
    """The command line that runs ``argv`` isolated in ``mode``.

    ``new_root``: an empty folder of the runtime's for the namespace mode's tmpfs.
    """
    if mode == "namespace":
        config = json.dumps({"binds": binds, "argv": argv, "root": new_root})
        return [sys.executable, "-m", "panoptes.runtime._sandbox_main", config]
    if mode == "bwrap":
        for source, _ in binds:
            os.makedirs(source, exist_ok=True)
        cmd = ["bwrap", "--die-with-parent"]
        for step in root_plan(binds):
            if step[0] == "dir":
                cmd += ["--dir", step[1]]
            elif step[0] == "symlink":
                cmd += ["--symlink", step[1], step[2]]
            else:  # --dev-bind: /dev's devices must keep working, as with the host's /
                cmd += ["--dev-bind", step[1], step[2]]
        return [*cmd, "--chdir", "/", "--", *argv]
    raise ValueError(f"unknown isolation mode {mode!r} (modes: {', '.join(MODES)})")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--probe":
        try:  # all that a code node's start does, in this short-lived process
            enter([], argv[1])
        except OSError as exc:
            print(exc, file=sys.stderr)
            return EXIT_NO_NAMESPACE
        return 0
    config = json.loads(argv[0])
    try:
        enter([tuple(b) for b in config["binds"]], config["root"])
    except OSError as exc:
        print(f"panoptes: cannot isolate the application: {exc}", file=sys.stderr, flush=True)
        return EXIT_NO_NAMESPACE
    args = config["argv"]
    try:
        os.execvp(args[0], args)
    except OSError as exc:
        print(f"panoptes: cannot start {args[0]}: {exc}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
