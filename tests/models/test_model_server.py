"""The model server: a separate process, shared memory, concurrent callers, bad requests."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import model_nets as nets
from panoptes.models import ModelClient, ModelInputError, ModelServer, ModelServerError
from panoptes.models import shm as shm_mod

pytestmark = pytest.mark.skipif(not shm_mod.SHM_DIR.is_dir(), reason="needs /dev/shm (Linux)")

RTOL, ATOL = 1e-5, 1e-5  # a batched run may sum in another order than a single one


def _name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def _reference(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _segments(tag: str) -> list[str]:
    return sorted(p.name for p in shm_mod.SHM_DIR.glob(shm_mod.segment_prefix(tag) + "*"))


@pytest.fixture
def server(classifier_onnx: Path):
    with ModelServer(classifier_onnx, name=_name(), intra_op_threads=1) as s:
        yield s


def _assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def test_runs_in_its_own_process(server: ModelServer, classifier_onnx: Path):
    assert server.pid != os.getpid() and server.is_alive()
    client = server.client()
    assert [i["name"] for i in client.inputs] == ["data"]
    x = np.random.default_rng(0).random((1, 3, 32, 32), np.float32)
    got = client.call({"data": x})
    assert isinstance(got, list) and [a.shape for a in got] == [(1, 10), (1, 10)]
    _assert_same(got, _reference(classifier_onnx).run(None, {"data": x}))
    client.close()


def test_four_threads_get_their_own_results(server: ModelServer, classifier_onnx: Path):
    reference = _reference(classifier_onnx)
    client = server.client()  # one client shared by all threads, as code nodes share it
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def caller(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            start.wait()
            for _ in range(25):
                batch = int(rng.integers(1, 3))
                x = rng.random((batch, 3, 32, 32), np.float32)
                _assert_same(client.call({"data": x}), reference.run(None, {"data": x}))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=caller, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = client.stats()
    client.close()
    assert not failures, failures[0]
    # Batching depends on timing: only that every request was served, in <= as many runs.
    assert stats["requests"] == 100 and 0 < stats["runs"] <= 100 and stats["errors"] == 0


def _process_caller(address: str, model: str, seed: int, results: mp.Queue) -> None:
    try:
        reference = _reference(Path(model))
        rng = np.random.default_rng(seed)
        with ModelClient(address) as client:
            for _ in range(15):
                x = rng.random((1, 3, 32, 32), np.float32)
                _assert_same(client.call({"data": x}), reference.run(None, {"data": x}))
        results.put((seed, None))
    except BaseException as exc:
        results.put((seed, repr(exc)))


@pytest.mark.slow
def test_four_processes_get_their_own_results(server: ModelServer, classifier_onnx: Path):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_caller, args=(str(server.address), str(classifier_onnx), s, results)
        )
        for s in range(4)
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    assert outcomes == {0: None, 1: None, 2: None, 3: None}
    assert _segments(server.tag) == []  # the callers unlinked their slots


def test_bad_requests_name_the_expected_input_and_the_server_keeps_serving(
    server: ModelServer, classifier_onnx: Path
):
    client = server.client()
    good = np.random.default_rng(1).random((1, 3, 32, 32), np.float32)
    with pytest.raises(ModelInputError) as err:
        client.call({"image": good})
    assert "unknown input(s) ['image']" in str(err.value)
    assert "data [?, 3, 32, 32] float32" in str(err.value)
    with pytest.raises(ModelInputError) as err:
        client.call({"data": good[:, :, :16]})
    assert "input 'data' has shape [1, 3, 16, 32]" in str(err.value)
    assert "data [?, 3, 32, 32] float32" in str(err.value)
    with pytest.raises(ModelInputError) as err:
        client.call({"data": good.astype(np.float64)})
    assert "dtype float64 but the model expects float32" in str(err.value)
    with pytest.raises(ModelInputError, match="missing input"):
        client.call({})
    # Another caller was never disturbed, and this one still works.
    want = _reference(classifier_onnx).run(None, {"data": good})
    _assert_same(server.client().call({"data": good}), want)
    _assert_same(client.call({"data": good}), want)


def test_fixed_batch_model_pads_smaller_requests(tmp_path: Path):
    path = tmp_path / "batch4.onnx"
    onnx.save(nets.onnx_classifier(batch=4), path)
    reference = _reference(path)
    with ModelServer(path, name=_name(), intra_op_threads=1) as server:
        client = server.client()
        x = np.random.default_rng(2).random((1, 3, 32, 32), np.float32)
        padded = np.concatenate([x, np.zeros((3, 3, 32, 32), np.float32)])
        want = [o[:1] for o in reference.run(None, {"data": padded})]
        _assert_same(client.call({"data": x}), want)
        with pytest.raises(ModelInputError, match="has shape \\[5, 3, 32, 32\\]"):
            client.call({"data": np.zeros((5, 3, 32, 32), np.float32)})


def test_outputs_larger_than_the_slot(tmp_path: Path):
    path = tmp_path / "tiler.onnx"
    onnx.save(nets.onnx_tiler(8, 5000), path)  # 32 bytes in, 160 KB out
    with ModelServer(path, name=_name(), intra_op_threads=1) as server:
        client = server.client()
        for k in range(3):  # first reply inline, then the grown slot carries it
            x = np.arange(8, dtype=np.float32)[None] + k
            (y,) = client.call({"x": x})
            np.testing.assert_array_equal(y, np.tile(x, (1, 5000)))


def test_shared_memory_is_cleaned_up(classifier_onnx: Path):
    server = ModelServer(classifier_onnx, name=_name(), intra_op_threads=1).start()
    client = server.client()
    client.call({"data": np.zeros((1, 3, 32, 32), np.float32)})
    slots = _segments(server.tag)
    assert len(slots) == 1 and slots[0].startswith(shm_mod.segment_prefix(server.tag))
    address = server.address
    server.stop()
    # The server only mapped the slot: stopping it must not unlink what a client owns.
    assert _segments(server.tag) == slots
    assert not address.exists()
    with pytest.raises(ModelServerError, match="lost the model server"):
        client.call({"data": np.zeros((1, 3, 32, 32), np.float32)})
    client.close()
    assert _segments(server.tag) == []


def test_segments_of_dead_clients_are_swept():
    tag = uuid.uuid4().hex[:8]
    dead_pid = 2**22 + 12345  # above the default pid_max: never a live process
    leaked = shm_mod.Segment(shm_mod.segment_name(tag, dead_pid, 0), 4096)
    mine = shm_mod.Segment(shm_mod.segment_name(tag, os.getpid(), 1), 4096)
    try:
        assert shm_mod.sweep(tag) == [leaked.name]
        assert _segments(tag) == [mine.name]
    finally:
        leaked.destroy()
        mine.destroy()


def test_a_server_that_cannot_load_its_model_says_why(tmp_path: Path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelServerError, match="failed to start"):
        ModelServer(bad, name=_name()).start()


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    )


def _wait_until(predicate, deadline: float = 60.0) -> bool:
    # A liveness deadline, not a speed threshold: it only bounds a hang.
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it is gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


@pytest.mark.slow
def test_server_exits_when_its_parent_is_killed(classifier_onnx: Path):
    parent = _python(
        f"""
        import time
        from panoptes.models import ModelServer
        server = ModelServer({str(classifier_onnx)!r}, name={_name()!r}).start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    server_pid = int(parent.stdout.readline())
    assert _pid_alive(server_pid)
    parent.kill()  # SIGKILL: no cleanup code runs in the parent
    parent.wait()
    assert _wait_until(lambda: not _pid_alive(server_pid))


@pytest.mark.slow
def test_a_crashed_client_leaves_no_segment(server: ModelServer):
    client = _python(
        f"""
        import time
        import numpy as np
        from panoptes.models import ModelClient
        client = ModelClient({str(server.address)!r})
        client.call({{"data": np.zeros((1, 3, 32, 32), np.float32)}})
        print("called", flush=True)
        time.sleep(600)
        """
    )
    assert client.stdout.readline().strip() == "called"
    assert len(_segments(server.tag)) == 1
    client.kill()
    client.wait()
    # The client's resource tracker unlinks what the client created; the server's sweep
    # (at start and stop) removes anything left by a creator that is gone.
    _wait_until(lambda: not _segments(server.tag), deadline=10)
    shm_mod.sweep(server.tag)
    assert _segments(server.tag) == []
    assert server.client().call({"data": np.zeros((1, 3, 32, 32), np.float32)})  # still serving
