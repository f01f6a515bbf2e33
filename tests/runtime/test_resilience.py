"""Resilience of the pieces the runtime restarts: a model server killed under its clients."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import onnx
import pytest

import model_nets as nets
from panoptes.models import ModelClient, ModelServer, ModelServerError
from panoptes.models import shm as shm_mod
from panoptes.shmem import pid_alive

pytestmark = pytest.mark.skipif(not shm_mod.SHM_DIR.is_dir(), reason="needs /dev/shm (Linux)")

X = np.zeros((1, 3, 32, 32), np.float32)


@pytest.fixture
def classifier(tmp_path: Path) -> Path:
    path = tmp_path / "classifier.onnx"
    onnx.save(nets.onnx_classifier(), path)
    return path


def _segments(tag: str) -> list[str]:
    return sorted(p.name for p in shm_mod.SHM_DIR.glob(shm_mod.segment_prefix(tag) + "*"))


def _until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_server_restarts_on_the_same_address_and_clients_carry_on(
    classifier: Path, tmp_path: Path
):
    server = ModelServer(classifier, name=f"t-{uuid.uuid4().hex[:8]}", socket_dir=tmp_path)
    server.start()
    try:
        address, old_pid = server.address, server.pid
        client = server.client()
        assert client.call({"data": X})[0].shape == (1, 10)
        os.kill(old_pid, signal.SIGKILL)
        _until(lambda: not server.is_alive(), what="the server to die")
        assert server.returncode == -signal.SIGKILL

        # Restart in the background while the client is already calling again.
        def restart() -> None:
            time.sleep(0.3)
            server.spawn()

        t = threading.Thread(target=restart)
        t.start()
        got = client.call({"data": X})  # waits for the server to come back, retries once
        t.join()
        assert got[0].shape == (1, 10)
        assert server.poll_ready(30)
        assert server.address == address and server.pid != old_pid
        # The broken connection's slot was unlinked; only the new one remains.
        assert len(_segments(server.tag)) == 1
        client.close()
        assert _segments(server.tag) == []
    finally:
        server.stop()
    assert not pid_alive(old_pid) and not address.exists()


def test_a_server_that_stays_down_gives_a_clear_error(classifier: Path, tmp_path: Path):
    server = ModelServer(classifier, name=f"t-{uuid.uuid4().hex[:8]}", socket_dir=tmp_path)
    server.start()
    try:
        client = ModelClient(server.address, reconnect_wait=0.5)
        client.call({"data": X})
        os.kill(server.pid, signal.SIGKILL)
        _until(lambda: not server.is_alive(), what="the server to die")
        with pytest.raises(ModelServerError, match=r"lost the model server .* did not come back"):
            client.call({"data": X})
        client.close()
        assert _segments(server.tag) == []
    finally:
        server.stop()


def test_a_call_timeout_is_not_retried(classifier: Path, tmp_path: Path):
    server = ModelServer(classifier, name=f"t-{uuid.uuid4().hex[:8]}", socket_dir=tmp_path)
    server.start()
    client = server.client()
    try:
        client.call({"data": X})
        os.kill(server.pid, signal.SIGSTOP)  # alive but silent: a timeout, not a crash
        client._connection().set_timeout(0.3)
        with pytest.raises(ModelServerError) as info:
            client.call({"data": X})
        assert isinstance(info.value.__cause__, TimeoutError)
    finally:
        os.kill(server.pid, signal.SIGCONT)
        client.close()
        server.stop()


def test_a_deep_socket_dir_still_gives_a_working_server(classifier: Path, tmp_path: Path):
    """A project in a long path: Unix socket addresses are limited to 107 bytes."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    server = ModelServer(classifier, name=f"t-{uuid.uuid4().hex[:8]}", socket_dir=deep)
    server.start()
    try:
        assert server.client().call({"data": X})[0].shape == (1, 10)
        assert len(str(server.address).encode()) <= 107
    finally:
        server.stop()
    assert not server.address.parent.exists()
