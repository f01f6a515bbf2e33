"""A test RTSP server (GStreamer's, from Debian): ``/usr/bin/python3 rtsp_server.py PORT [PATH]``.

Run with Debian's own Python, which owns the ``gi`` bindings (not the project's venv).
Serves a live test pattern, 320x240 H.264 at 15 fps, at ``rtsp://127.0.0.1:PORT/PATH``
(PATH defaults to ``cam``); any other path answers DESCRIBE with 404. Prints ``READY``
once listening and runs until killed.

Needs: gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly.
``--check`` only imports the bindings (exit 0 when they are there).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = (
    "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 "
    "! x264enc speed-preset=ultrafast tune=zerolatency key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 )"
)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        return 0
    port = int(argv[0])
    path = argv[1] if len(argv) > 1 else "cam"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(LAUNCH)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/" + path.lstrip("/"), factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        return 1
    print("READY", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
