"""A test camera: GStreamer's RTSP server (Debian's) serving a generated, endless clip.

For the demo (``panoptes up --demo``) and the tests, which start it themselves::

    with CameraServer(codec="h264", size=(640, 360), username="u", password="p") as cam:
        cam.url                 # rtsp://127.0.0.1:PORT/cam (no credentials in it)
        cam.kill(); cam.start() # the camera vanishes (no TEARDOWN) and comes back

The server half runs as ``/usr/bin/python3 testcamera.py PORT [options]``: Debian's
Python owns the ``gi`` GStreamer bindings, the project's virtualenv does not, so this
file imports nothing of Panoptes and only the standard library at module level. It
serves a live test pattern on 127.0.0.1 at ``/PATH`` (any other path answers DESCRIBE
with 404), over RTSP/TCP and UDP, optionally behind Basic auth (the password comes
in the environment, never on the command line), H.264 or H.265. It prints ``READY``
once listening. ``--check [h265]`` exits 0 when the bindings (and encoder) are there.

Needs: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
PASSWORD_ENV = "PANOPTES_TESTCAMERA_PASSWORD"
APT_PACKAGES = (
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly"
)
ENCODERS = {
    # key-int = fps: a joining client decodes within a second.
    "h264": "x264enc speed-preset=ultrafast tune=zerolatency key-int-max={fps} "
    "! rtph264pay name=pay0 pt=96",
    "h265": "x265enc speed-preset=ultrafast tune=zerolatency key-int-max={fps} "
    "! rtph265pay name=pay0 pt=96",
}


# -- the controller (the project's Python) -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable(codec: str = "h264") -> str | None:
    """Why the test camera cannot run here (None when it can), with the fix."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"the test camera needs {SYSTEM_PYTHON} with GStreamer's gi bindings"
    check = subprocess.run(
        [SYSTEM_PYTHON, __file__, "--check", codec], capture_output=True, text=True, timeout=60
    )
    if check.returncode == 0:
        return None
    why = (check.stderr.strip().splitlines() or ["no error output"])[-1]
    return f"{SYSTEM_PYTHON} cannot serve {codec} over RTSP ({why}); apt-get install {APT_PACKAGES}"


class CameraServer:
    """The RTSP server in a subprocess, restartable on the same port (see module doc)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        path: str = "cam",
        codec: str = "h264",
        size: tuple[int, int] = (320, 240),
        fps: int = 15,
        pattern: str = "ball",
        username: str | None = None,
        password: str | None = None,
        log: Path | None = None,
    ) -> None:
        if codec not in ENCODERS:
            raise ValueError(f"codec must be one of {', '.join(ENCODERS)}, not {codec!r}")
        self.port = port or free_port()
        self.path, self.codec, self.size, self.fps = path.lstrip("/"), codec, size, fps
        self.pattern = pattern
        self.username, self.password = username, password
        self.log = log
        self.url = f"rtsp://127.0.0.1:{self.port}/{self.path}"
        self.proc: subprocess.Popen | None = None

    def _argv(self) -> list[str]:
        w, h = self.size
        argv = [SYSTEM_PYTHON, __file__, str(self.port), "--path", self.path]
        argv += ["--codec", self.codec, "--size", f"{w}x{h}", "--fps", str(self.fps)]
        argv += ["--pattern", self.pattern]
        return argv + (["--user", self.username] if self.username else [])

    def start(self, timeout: float = 20.0) -> CameraServer:
        """Start serving; retried while the port of a just-killed server is still busy."""
        # The controller runs in Panoptes's Python (only the server half must not).
        from panoptes.procs import die_with_parent

        env = dict(os.environ)
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        deadline = time.monotonic() + timeout
        while True:
            err = self.log.open("a") if self.log else subprocess.DEVNULL
            try:
                self.proc = subprocess.Popen(
                    self._argv(),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=env,
                    preexec_fn=die_with_parent,
                )
            finally:
                if self.log:
                    err.close()
            assert self.proc.stdout is not None
            wait = max(0.1, deadline - time.monotonic())
            ready, _, _ = select.select([self.proc.stdout], [], [], wait)
            if ready and self.proc.stdout.readline().strip() == "READY":
                return self
            self.kill()
            if time.monotonic() > deadline:
                told = self.log.read_text() if self.log and self.log.exists() else ""
                raise RuntimeError(f"test camera did not start on port {self.port}: {told}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL: the camera vanishes mid-stream, without a TEARDOWN."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> CameraServer:
        return self if self.running() else self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


# -- the server (Debian's Python) -----------------------------------------------------------


def _launch(codec: str, width: int, height: int, fps: int, pattern: str) -> str:
    return (
        f"( videotestsrc is-live=true pattern={pattern} "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1 "
        f"! timeoverlay ! {ENCODERS[codec].format(fps=fps)} )"
    )


def serve(args: argparse.Namespace) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    width, height = (int(v) for v in args.size.split("x"))
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(_launch(args.codec, width, height, args.fps, args.pattern))
    factory.set_shared(True)  # one encoder for every client, like a camera
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        basic = GstRtspServer.RTSPAuth.make_basic(args.user, os.environ.get(PASSWORD_ENV, ""))
        auth.add_basic(basic, token)
        server.set_auth(auth)
        role, _ = Gst.Structure.from_string(
            "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
        factory.add_role_from_structure(role)
    server.get_mount_points().add_factory("/" + args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    print("READY", flush=True)
    GLib.MainLoop().run()
    return 0


def check(codec: str) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import Gst, GstRtspServer  # noqa: F401

    Gst.init(None)
    for element in ENCODERS[codec].replace("!", " ").split():
        if "=" not in element and Gst.ElementFactory.find(element) is None:
            print(f"GStreamer element {element} is missing", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        return check(argv[1] if len(argv) > 1 else "h264")
    ap = argparse.ArgumentParser(prog="testcamera.py", description=__doc__.split("\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("path_arg", nargs="?", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--path", default="cam")
    ap.add_argument("--codec", choices=sorted(ENCODERS), default="h264")
    ap.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument(
        "--pattern",
        default="ball",
        help="videotestsrc pattern and properties, e.g. 'zone-plate kx2=20 ky2=20 kt=1'",
    )
    ap.add_argument("--user", default=None, help=f"Basic auth user; password in ${PASSWORD_ENV}")
    args = ap.parse_args(argv)
    args.path = (args.path_arg or args.path).lstrip("/")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
