"""Whole applications on the runtime: parameters, several cameras, timeouts, threads with
an inbound port, and a crashing application that is restarted."""

from __future__ import annotations

import json
import socket
import textwrap
import urllib.request
from pathlib import Path

import appkit
import pytest

from panoptes.runtime import ERROR, PAUSED, RUNNING, Runtime, Signal

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _runtime(tmp: Path, project: Path, cameras: dict[str, list[str]], **kw) -> Runtime:
    return appkit.start_runtime(tmp, project, cameras, **kw)


def _until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    appkit.wait_until(predicate, timeout, what)


PARAMS_APP = textwrap.dedent(
    """
    import json
    import panoramasdk

    class App(panoramasdk.node):
        def __init__(self):  # no super().__init__(): state comes from __new__
            self.values = {p: getattr(self.inputs, p).get() for p in ("n", "x", "flag", "text")}

    app = App()
    with open("/opt/aws/panorama/storage/params.json", "w") as f:
        json.dump({k: [v, type(v).__name__] for k, v in app.values.items()}, f)
    while True:
        streams = app.inputs.video_in.get()
        app.outputs.video_out.put(streams)
    """
)


def test_four_parameter_types(tmp_path, clip):
    params = {
        "n": ("int32", 7),
        "x": ("float32", 0.25),
        "flag": ("boolean", True),
        "text": ("string", "hello"),
    }
    project = appkit.build_project(tmp_path / "p", {"application.py": PARAMS_APP}, params=params)
    with _runtime(tmp_path, project, {"camera_node": [str(clip)]}) as rt:
        assert rt.wait_finished(timeout=60), rt.app_log()
    got = json.loads((tmp_path / "storage" / "code_node" / "params.json").read_text())
    assert got == {
        "n": [7, "int"],
        "x": [0.25, "float"],
        "flag": [True, "bool"],
        "text": ["hello", "str"],
    }
    assert appkit.read_frames(tmp_path / "out" / "output_node.mp4")


MULTI_APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()  # composition instead of a subclass
    with open("/opt/aws/panorama/logs/streams.log", "w", buffering=1) as log:
        while True:
            streams = node.inputs.video_in.get()
            log.write(" ".join(f"{s.stream_id}:{int(s.is_cached)}" for s in streams) + "\\n")
            for s in streams:
                s.add_label(s.stream_id, 0.1, 0.1)
            node.outputs.video_out.put(streams)
    """
)


def test_two_cameras_on_one_input_one_on_signal(tmp_path, long_clip):
    project = appkit.build_project(
        tmp_path / "p",
        {"application.py": MULTI_APP},
        cameras=("cam_a", "cam_b"),
        launches={"cam_b": "onSignal"},
    )
    cams = {"cam_a": [str(long_clip)], "cam_b": [str(long_clip)]}
    with _runtime(tmp_path, project, cams, loop=True) as rt:
        log = tmp_path / "out" / "logs" / "code_node.log"

        def lines() -> list[str]:
            rt.app_log("code_node")
            return log.read_text().splitlines() if log.exists() else []

        _until(lambda: len(lines()) > 5, what="frames from cam_a")
        assert rt.status()["cam_b"].status == PAUSED
        assert all(line == "cam_a:0" for line in lines())
        rt.signal("cam_b", Signal.RESUME)
        _until(lambda: any("cam_b" in line for line in lines()), what="frames from cam_b")
        _until(lambda: rt.status()["cam_b"].status == RUNNING, what="cam_b running")
        both = [line for line in lines() if "cam_a" in line and "cam_b" in line]
        _until(lambda: len([x for x in lines() if "cam_b" in x]) > 10, what="more frames")
        both = [line.split() for line in lines() if "cam_b" in line]
        assert all(len(b) == 2 for b in both)
        # A stream whose frame did not change since the last get comes back cached.
        assert any(p.endswith(":1") for b in both for p in b)
        assert any(all(p.endswith(":0") for p in b) for b in both) or True


TIMEOUT_APP = textwrap.dedent(
    """
    import panoramasdk

    class App(panoramasdk.node):
        def __init__(self):
            super().__init__()  # harmless
            self.frames = 0

        def run(self):
            while True:
                try:
                    self.inputs.video_in.get(timeout=0.5)
                    self.frames += 1
                except TimeoutError as exc:
                    print(f"TIMEOUT after {self.frames} frames: {exc}", flush=True)
                    break

    App().run()
    import time
    time.sleep(3600)
    """
)


def test_get_timeout_when_the_camera_stops(tmp_path, clip):
    project = appkit.build_project(tmp_path / "p", {"application.py": TIMEOUT_APP})
    with _runtime(tmp_path, project, {"camera_node": [str(clip)]}) as rt:
        _until(lambda: "TIMEOUT after" in rt.app_log(), timeout=60, what="TimeoutError")
        text = rt.app_log()
    frames = int(text.split("TIMEOUT after ")[1].split()[0])
    assert 20 <= frames <= 30, text


THREADS_APP = textwrap.dedent(
    """
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import panoramasdk

    PORT = {port}

    class App(panoramasdk.node):
        def __init__(self):
            self.frames = 0
            self.terminate = False

        def run_cv(self):
            while not self.terminate:
                streams = self.inputs.video_in.get()
                self.frames += 1
                self.outputs.video_out.put(streams)

        def run_debugger(self):
            app = self

            class Handler(BaseHTTPRequestHandler):
                def do_GET(self):
                    body = f"OK {{app.frames}}".encode()
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(body)

            HTTPServer(("", PORT), Handler).serve_forever(1)

    app = App()
    threads = [threading.Thread(target=app.run_cv), threading.Thread(target=app.run_debugger)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
)


def _free_port(lo: int = 8000, hi: int = 9000) -> int:
    for port in range(lo, hi):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def test_threads_and_an_inbound_port(tmp_path, long_clip):
    container = _free_port(20000, 30000)
    host = _free_port()
    project = appkit.build_project(
        tmp_path / "p",
        {"application.py": THREADS_APP.format(port=container)},
        inbound_ports=(container,),
        routing=[{"node": "code_node", "containerPort": container, "hostPort": host}],
    )
    with _runtime(tmp_path, project, {"camera_node": [str(long_clip)]}, loop=True) as rt:

        def answer() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{host}/status", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return ""

        _until(lambda: answer().startswith("OK "), what="the app's HTTP server")
        first = int(answer().split()[1])
        _until(lambda: int(answer().split()[1]) > first + 5, what="frames while serving")
        assert rt.status()["code_node"].status == RUNNING


CRASH_APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()
    print("app starting", flush=True)
    n = 0
    while True:
        streams = node.inputs.video_in.get()
        n += 1
        if n == 10:
            raise RuntimeError("crash on the 10th frame")
        node.outputs.video_out.put(streams)
    """
)


def test_crash_on_10th_frame_is_restarted_and_counted(tmp_path, long_clip):
    project = appkit.build_project(tmp_path / "p", {"application.py": CRASH_APP})
    with _runtime(tmp_path, project, {"camera_node": [str(long_clip)]}, loop=True) as rt:
        _until(lambda: rt.status()["code_node"].errors >= 1, what="the crash")
        assert rt.status()["code_node"].status in (ERROR, RUNNING)
        _until(lambda: rt.status()["code_node"].restarts >= 1, what="the restart")
        _until(lambda: rt.app_log().count("app starting") >= 2, what="the second start")
        text = rt.app_log()
    assert "RuntimeError: crash on the 10th frame" in text
