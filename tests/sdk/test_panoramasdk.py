"""panoramasdk against hand-made runtime state: rings, a model server, a node config."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import onnx
import pytest

import model_nets as nets
import panoramasdk
from panoptes.media import FrameRing, RingReader, RingWriter, segment_name
from panoptes.models import ModelServer
from panoptes.runtime import client as rt_client


@pytest.fixture
def bound(tmp_path, monkeypatch):
    cam = FrameRing.create(segment_name(f"cam-{uuid.uuid4().hex[:6]}"), 64 * 48 * 3, 6)
    out = FrameRing.create(segment_name(f"out-{uuid.uuid4().hex[:6]}"), 64 * 48 * 3, 6)
    model = tmp_path / "m.onnx"
    onnx.save(nets.onnx_classifier(), model)
    with ModelServer(model, name=f"sdk-{uuid.uuid4().hex[:6]}", intra_op_threads=1) as server:
        rt_client.write(
            tmp_path / "node",
            "code_node",
            {
                "video_in": {"type": "media", "rings": [{"ring": cam.name, "stream": "cam"}]},
                "n": {"type": "int32", "value": 3},
                "on": {"type": "boolean", "value": False},
            },
            {"video_out": {"type": "media", "ring": out.name}},
            {"model_node": str(server.address)},
        )
        monkeypatch.setenv(rt_client.ENV_NODE, "code_node")
        monkeypatch.setenv(rt_client.ENV_ADDR, str(tmp_path / "node"))
        yield cam, out
    cam.destroy()
    out.destroy()


def _frame(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def test_node_without_runtime_raises(monkeypatch):
    monkeypatch.delenv(rt_client.ENV_NODE, raising=False)
    with pytest.raises(RuntimeError, match="panoptes app run"):
        panoramasdk.node()


def test_ports_parameters_media_and_put(bound):
    cam, out = bound

    class App(panoramasdk.node):
        def __init__(self):  # never calls super().__init__()
            self.n = self.inputs.n.get()

    app = App()
    assert app.n == 3 and app.inputs.on.get() is False
    with pytest.raises(TimeoutError):
        app.inputs.video_in.get(timeout=0.05)
    RingWriter(cam).write(_frame(10), extra={"stream_id": "cam", "uri": "file.mp4"})
    (m,) = app.inputs.video_in.get(timeout=1)
    assert m.image.shape == (48, 64, 3) and m.image.dtype == np.uint8 and not m.is_cached
    assert m.stream_id == "cam" and m.stream_uri == "file.mp4" and len(m.time_stamp) == 2
    m.image[:] = 99  # private to this reader: the ring's frame is untouched
    other = RingReader(FrameRing.attach(cam.name))
    assert other.take().image.max() == 10
    m.add_label("hi", 0.1, 0.2)
    m.add_rect(0.1, 0.1, 0.5, 0.5)
    app.outputs.video_out.put([m])
    got = RingReader(FrameRing.attach(out.name)).take_all()
    assert got[0].image.max() == 99
    assert got[0].extra["ann"] == [["label", "hi", 0.1, 0.2], ["rect", 0.1, 0.1, 0.5, 0.5]]
    with pytest.raises(ValueError):
        app.outputs.video_out.put([])


def test_slow_reader_gets_the_newest_frame(bound):
    cam, _ = bound
    node = panoramasdk.node()
    w = RingWriter(cam)
    for v in range(1, 20):
        w.write(_frame(v))
    (m,) = node.inputs.video_in.get(timeout=1)
    assert m.image.max() == 19


def test_call_orders_inputs_and_unknown_model(bound):
    node = panoramasdk.node()
    x = np.random.default_rng(0).random((1, 3, 32, 32), np.float32)
    a = node.call({"data": x}, "model_node")
    b = node.call("model_node", {"data": x})
    c = node.call("model_node", x)
    assert isinstance(a, tuple) and [o.shape for o in a] == [(1, 10), (1, 10)]
    for o1, o2, o3 in zip(a, b, c, strict=True):
        np.testing.assert_allclose(o1, o2)
        np.testing.assert_allclose(o1, o3)
    with pytest.raises(KeyError):
        node.call({"data": x}, "no_such_model")


def test_other_threads_run_while_call_waits(bound):
    """A thread of the app keeps its pace while another waits in call(): ticks during a
    call the (stopped) model never answers, compared with ticks during a plain sleep."""
    import os
    import signal

    node = panoramasdk.node()
    x = np.random.default_rng(0).random((1, 3, 32, 32), np.float32)
    for _ in range(20):  # warm: connected, slot and request layout cached
        node.call({"data": x}, "model_node")
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    time.sleep(0.5)
    while_sleeping = len(ticks)
    pid = _server_pid(node._model_client("model_node"))
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError):
            node.call({"data": x}, "model_node", timeout=0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
        stop.set()
        t.join()
    while_calling = len(ticks) - while_sleeping
    assert while_calling >= 0.5 * while_sleeping, (while_calling, while_sleeping)


def test_a_blocked_get_returns_the_frame_published_while_it_waits(bound, monkeypatch):
    from panoptes.media import ring as ring_mod

    monkeypatch.setattr(ring_mod, "WAIT_MAX", 600.0)  # only the source's wake-up ends the wait
    cam, _ = bound
    node = panoramasdk.node()
    with pytest.raises(TimeoutError):
        node.inputs.video_in.get(timeout=0.01)  # attaches the reader; nothing published yet
    got: list = []
    t = threading.Thread(target=lambda: got.append(node.inputs.video_in.get(timeout=60)))
    t.start()
    RingWriter(cam).write(_frame(42))
    t.join(60)
    assert not t.is_alive()
    (m,) = got[0]
    assert m.image.max() == 42 and not m.is_cached


def test_repeated_calls_give_each_input_its_own_answer(bound, tmp_path):
    """The hot path reuses the encoded request and the slot's views when the layout
    repeats: the answers must still follow every new input, across layout changes."""
    import onnxruntime as ort

    reference = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    node = panoramasdk.node()
    rng = np.random.default_rng(3)
    for batch in (1, 1, 1, 2, 2, 1, 3, 1):
        x = rng.random((batch, 3, 32, 32), np.float32)
        got = node.call({"data": x}, "model_node")
        want = reference.run(None, {"data": x})
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    # A wrong dtype right after cached good calls is still refused, and names the fix.
    with pytest.raises(Exception, match="dtype float64 but the model expects float32"):
        node.call({"data": rng.random((1, 3, 32, 32))}, "model_node")
    x = rng.random((1, 3, 32, 32), np.float32)
    got = node.call({"data": x}, "model_node")[0]
    np.testing.assert_allclose(got, reference.run(None, {"data": x})[0], rtol=1e-5, atol=1e-5)


def test_call_timeout_on_a_silent_model_then_calls_work_again(bound):
    import os
    import signal

    node = panoramasdk.node()
    x = np.zeros((1, 3, 32, 32), np.float32)
    node.call({"data": x}, "model_node")
    client = node._model_client("model_node")
    pid = _server_pid(client)
    os.kill(pid, signal.SIGSTOP)  # alive but silent
    try:
        with pytest.raises(TimeoutError, match=r"'model_node' gave no answer in 0\.3 s"):
            node.call({"data": x}, "model_node", timeout=0.3)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert node.call({"data": x}, "model_node", timeout=30)[0].shape == (1, 10)


def _server_pid(client) -> int:
    import socket
    import struct

    conn = client._connection()
    creds = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]
