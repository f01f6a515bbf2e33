"""The model server: one process per model node instance, shared by its callers.

    server = ModelServer(compiled, name="model_node").start()
    client = server.client()          # or ModelClient(server.address) in another process
    outputs = client.call({"data": image})   # -> list of arrays, as Panorama's node.call

Design, kept small on purpose:
* Control messages go over a Unix socket (a length-prefixed JSON header); tensors go
  through shared memory. Each client connection (one per calling thread) owns one
  segment, its "slot": it writes its inputs there, the server runs the model and writes
  the outputs back into the same slot. Outputs that do not fit come back inline on the
  socket and the client grows its slot for the next call.
* The server is a single thread around a selector: whatever requests arrived while
  the previous inference ran are served together, batched into one run when the
  model's batch axis allows it. Parallelism comes from ONNX Runtime's intra-op
  threads, not from Python threads competing for the GIL.
* Clients create their segments and unlink them (their resource tracker cleans up
  after a crash); the server maps them without tracking (see shm.py) and removes
  segments of dead clients by their per-server name prefix.
* A bad request (unknown input name, wrong shape or dtype) gets an error reply that
  names what the model expects; the server keeps serving everyone else.
* A server that died can be spawned again on the same address (the runtime does);
  a client whose connection breaks reconnects, waiting a little for it, and retries
  the call once.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import mmap
import os
import select
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from panoptes.models import shm
from panoptes.models.errors import ModelInputError, ModelServerError

_HEAD = struct.Struct("!II")  # header length, payload length
_ALIGN = 64  # cache-line aligned tensors in a slot
_MAX_SOCKET_PATH = 107  # bytes of a Unix socket address (sun_path) on Linux
_RECV_BUF = 1 << 16  # control messages are small; only inline outputs are larger
_CACHED_REPLIES = 64  # distinct output layouts remembered (dynamic shapes vary)
_READ_TIMEOUT = 10.0  # a client that starts a message but stalls is dropped after this
# Seconds a client waits for a crashed server to be restarted: the restart backs off
# and then loads the model again, which takes seconds on a busy 2-core box.
RECONNECT_WAIT = 30.0
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(uint16)": "uint16",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}

# --- wire format -------------------------------------------------------------------------


def _frame(header: dict, payload_len: int = 0) -> bytes:
    """The length prefix and JSON header of one message (the payload follows it)."""
    head = json.dumps(header).encode()
    return _HEAD.pack(len(head), payload_len) + head


def _send(sock: socket.socket, header: dict, payload: bytes | bytearray = b"") -> None:
    sock.sendall(_frame(header, len(payload)))
    if payload:
        sock.sendall(payload)


def _recv_raw(sock: socket.socket, buf: bytearray) -> tuple[bytes, bytearray]:
    """One message as (header bytes, payload), usually with ONE recv into ``buf``.

    Requests and replies strictly alternate on a connection (one call in flight per
    connection), so a read never holds the start of the next message; more bytes
    than one message means the peer is out of step (ValueError).
    """
    view = memoryview(buf)
    got = sock.recv_into(view)
    while True:
        if got == 0:
            raise ConnectionError("connection closed")
        if got >= _HEAD.size:
            break
        k = sock.recv_into(view[got:])
        got = got + k if k else 0
    head_len, payload_len = _HEAD.unpack_from(view)
    total = _HEAD.size + head_len + payload_len
    if got > total:
        raise ValueError("the peer sent more than one message: out of step")
    if total > len(view):  # a large inline payload: continue in a buffer of its own
        big = bytearray(total)
        big[:got] = view[:got]
        view = memoryview(big)
    while got < total:
        k = sock.recv_into(view[got:total])
        if k == 0:
            raise ConnectionError("connection closed")
        got += k
    start = _HEAD.size + head_len
    payload = bytearray(view[start:total]) if payload_len else bytearray()
    return bytes(view[_HEAD.size : start]), payload


def _recv(sock: socket.socket, buf: bytearray | None = None) -> tuple[dict, bytearray]:
    head, payload = _recv_raw(sock, buf if buf is not None else bytearray(_RECV_BUF))
    return json.loads(head), payload


def _layout(arrays: Sequence[np.ndarray]) -> tuple[list[dict], int]:
    """Aligned offsets of `arrays` packed one after another, and the total size."""
    entries, offset = [], 0
    for a in arrays:
        entries.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset})
        offset += -(-a.nbytes // _ALIGN) * _ALIGN
    return entries, offset


def _view(buffer: Any, entry: Mapping[str, Any]) -> np.ndarray:
    return np.ndarray(tuple(entry["shape"]), np.dtype(entry["dtype"]), buffer, entry["offset"])


def server_tag(name: str) -> str:
    """The per-server part of segment names (short: macOS limits names to 31 bytes)."""
    return hashlib.sha256(name.encode()).hexdigest()[:8]


# --- server process ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    name: str
    shape: tuple[Any, ...]  # int, or str/None for a dynamic axis
    dtype: np.dtype

    def describe(self) -> str:
        dims = ", ".join(str(d) if isinstance(d, int) else "?" for d in self.shape)
        return f"{self.name} [{dims}] {self.dtype}"


@dataclass
class _Request:
    conn: socket.socket
    mapping: mmap.mmap | None
    arrays: dict[str, np.ndarray]
    batch: int = 1
    error: str | None = None


class _Server:
    def __init__(self, config: dict) -> None:
        from panoptes.models.session import open_session  # onnxruntime only in this process

        self.tag = config["tag"]
        self.session = open_session(
            config["model"],
            target=config["target"],
            intra_op_threads=config["intra_op_threads"],
            allow_spinning=config["allow_spinning"],
        )
        self.inputs = [
            _Input(i.name, tuple(i.shape), np.dtype(_ORT_DTYPES.get(i.type, "float32")))
            for i in self.session.get_inputs()
        ]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.batch_mode, self.batch_limit = self._batching(config["max_batch"])
        self.mappings: dict[socket.socket, tuple[str, mmap.mmap]] = {}
        # The hot path skips JSON and validation for a request identical to the
        # connection's previous one (same slot, names, shapes, dtypes): its header
        # bytes -> the checked request's array views. Replies likewise by layout.
        self._last: dict[socket.socket, tuple[bytes, _Request]] = {}
        self._replies: dict[tuple, tuple[list[dict], int, bytes]] = {}
        self._buf = bytearray(_RECV_BUF)
        # requests served and model runs: fewer runs than requests means batching happened
        self.stats = {"requests": 0, "runs": 0, "errors": 0}
        shm.sweep(self.tag)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.address = Path(config["address"])
        self.listener.bind(str(self.address))
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")

    def _batching(self, max_batch: int) -> tuple[str | None, int]:
        """How requests combine: "dynamic" (any batch up to max_batch), "fixed" (pad to N)."""
        first = [i.shape[0] if i.shape else 1 for i in self.inputs]
        if all(i.shape for i in self.inputs) and not any(isinstance(d, int) for d in first):
            return "dynamic", max_batch
        if all(isinstance(d, int) and d > 1 and d == first[0] for d in first):
            return "fixed", first[0]
        return None, 1

    def hello(self) -> dict:
        outputs = [
            {"name": o.name, "shape": list(o.shape), "dtype": _ORT_DTYPES.get(o.type, "?")}
            for o in self.session.get_outputs()
        ]
        inputs = [
            {"name": i.name, "shape": list(i.shape), "dtype": i.dtype.name} for i in self.inputs
        ]
        return {"op": "hello", "tag": self.tag, "inputs": inputs, "outputs": outputs}

    # -- the loop --

    def serve_forever(self, control: Any) -> None:
        self.selector.register(control, selectors.EVENT_READ, "control")
        while True:
            pending: list[_Request] = []
            for key, _ in self.selector.select():
                if key.data == "control":
                    with contextlib.suppress(EOFError, OSError):
                        if control.recv() != "stop":
                            continue
                    return  # "stop", or the parent died (EOF): either way we are done
                if key.data == "accept":
                    conn, _ = self.listener.accept()
                    # A stalled client is dropped after _READ_TIMEOUT by the kernel's
                    # own timeouts: a Python socket timeout would poll before every
                    # recv and send, two system calls more per request.
                    conn.settimeout(None)
                    limit = struct.pack("ll", int(_READ_TIMEOUT), 0)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
                    try:
                        _send(conn, self.hello())
                    except OSError:  # gone before we said hello
                        conn.close()
                        continue
                    self.selector.register(conn, selectors.EVENT_READ, "client")
                elif (request := self._read(key.fileobj)) is not None:
                    pending.append(request)
            if pending:
                self._serve(pending)

    def close(self) -> None:
        for conn in list(self.mappings) + [
            k.fileobj for k in self.selector.get_map().values() if k.data == "client"
        ]:
            self._drop(conn)
        self.listener.close()
        # Also when the parent was killed and cannot: remove our socket and its private
        # directory (rmdir only removes it if nothing else is in it).
        with contextlib.suppress(OSError):
            self.address.unlink()
            self.address.parent.rmdir()
        shm.sweep(self.tag)

    def _drop(self, conn: Any) -> None:
        self._last.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        if (entry := self.mappings.pop(conn, None)) is not None:
            with contextlib.suppress(BufferError):
                entry[1].close()
        conn.close()

    # -- requests --

    def _read(self, conn: Any) -> _Request | None:
        try:
            head, _ = _recv_raw(conn, self._buf)
            last = self._last.get(conn)
            if last is not None and last[0] == head:
                return last[1]  # the same checked request again: new data, same views
            header = json.loads(head)
        except (OSError, ConnectionError, ValueError):
            self._drop(conn)  # the client went away (or spoke garbage)
            return None
        if header.get("op") == "stats":
            with contextlib.suppress(OSError):
                _send(conn, {"ok": True, **self.stats})
            return None
        self._last.pop(conn, None)  # its views may be of a mapping about to be replaced
        try:
            mapping = self._mapping(conn, str(header["shm"]))
            arrays = {e["name"]: _view(mapping, e) for e in header["inputs"]}
        except (KeyError, TypeError, ValueError, OSError) as exc:
            return _Request(conn, None, {}, error=f"malformed request: {exc}")
        request = _Request(conn, mapping, arrays)
        request.error = self._validate(request)
        if request.error is None:
            self._last[conn] = (head, request)
        return request

    def _mapping(self, conn: Any, name: str) -> mmap.mmap:
        # Only this server's slots: a client must not make us map someone else's memory.
        if not name.startswith(shm.segment_prefix(self.tag)) or "/" in name:
            raise ValueError(f"segment {name!r} is not one of this server's")
        current = self.mappings.get(conn)
        if current is not None and current[0] == name:
            return current[1]
        if current is not None:  # the client grew its slot
            with contextlib.suppress(BufferError):
                current[1].close()
        mapping = shm.attach(name)
        self.mappings[conn] = (name, mapping)
        return mapping

    def _expected(self) -> str:
        return "; ".join(i.describe() for i in self.inputs)

    def _validate(self, request: _Request) -> str | None:
        names = [i.name for i in self.inputs]
        unknown = sorted(set(request.arrays) - set(names))
        missing = [n for n in names if n not in request.arrays]
        if unknown or missing:
            what = f"unknown input(s) {unknown}" if unknown else f"missing input(s) {missing}"
            return f"{what}: the model's inputs are {self._expected()}"
        batches = set()
        for spec in self.inputs:
            array = request.arrays[spec.name]
            if array.dtype != spec.dtype:
                return (
                    f"input {spec.name!r} has dtype {array.dtype} but the model expects "
                    f"{spec.dtype} ({spec.describe()}); convert it with .astype(np.{spec.dtype})"
                )
            fixed_ok = array.ndim == len(spec.shape) and all(
                not isinstance(d, int) or d == n or (k == 0 and self.batch_mode == "fixed")
                for k, (d, n) in enumerate(zip(spec.shape, array.shape, strict=True))
            )
            too_big = array.ndim and array.shape[0] > self.batch_limit > 1
            if not fixed_ok or (self.batch_mode == "fixed" and too_big):
                return (
                    f"input {spec.name!r} has shape {list(array.shape)} but the model expects "
                    f"{spec.describe()}"
                )
            batches.add(array.shape[0] if array.ndim else 1)
        if len(batches) > 1:
            return f"inputs have different batch sizes {sorted(batches)}"
        request.batch = batches.pop() if batches else 1
        return None

    def _serve(self, pending: list[_Request]) -> None:
        valid = []
        self.stats["requests"] += len(pending)
        for request in pending:
            if request.error is not None:
                self._reply_error(request, "input", request.error)
            else:
                valid.append(request)
        for group in self._groups(valid):
            self._serve_group(group)

    def _groups(self, requests: list[_Request]) -> list[list[_Request]]:
        if self.batch_mode is None or len(requests) == 1:
            return [[r] for r in requests]
        groups: list[list[_Request]] = []
        for r in requests:
            g = groups[-1] if groups else None
            key = [r.arrays[i.name].shape[1:] for i in self.inputs]
            fits = g is not None and sum(x.batch for x in g) + r.batch <= self.batch_limit
            if fits and key == [g[0].arrays[i.name].shape[1:] for i in self.inputs]:
                g.append(r)
            else:
                groups.append([r])
        return groups

    def _serve_group(self, group: list[_Request]) -> None:
        try:
            results = self._infer(group)
            error = "the model's outputs are not batch-major, so requests cannot be batched"
        except Exception as exc:
            results, error = None, f"inference failed: {exc}"
        if results is not None:
            for request, outputs in zip(group, results, strict=True):
                self._reply(request, outputs)
        elif len(group) > 1:  # one bad apple: serve each alone so only it fails
            for request in group:
                self._serve_group([request])
        else:
            self._reply_error(group[0], "run", error)

    def _infer(self, group: list[_Request]) -> list[list[np.ndarray]] | None:
        total = sum(r.batch for r in group)
        size = self.batch_limit if self.batch_mode == "fixed" else total
        self.stats["runs"] += 1
        if len(group) == 1 and size == total:
            return [self.session.run(self.output_names, group[0].arrays)]
        feeds = {}
        for spec in self.inputs:
            parts = [r.arrays[spec.name] for r in group]
            if size > total:  # a fixed batch of N: pad with zeros, drop their outputs
                parts.append(np.zeros((size - total, *parts[0].shape[1:]), spec.dtype))
            feeds[spec.name] = np.concatenate(parts)
        outputs = self.session.run(self.output_names, feeds)
        if any(o.ndim == 0 or o.shape[0] != size for o in outputs):
            return None
        results, start = [], 0
        for r in group:
            results.append([o[start : start + r.batch] for o in outputs])
            start += r.batch
        return results

    def _reply_layout(self, outputs: list[np.ndarray]) -> tuple[list[dict], int, bytes]:
        key = tuple((o.dtype.str, o.shape) for o in outputs)
        cached = self._replies.get(key)
        if cached is None:
            if len(self._replies) >= _CACHED_REPLIES:
                self._replies.clear()
            entries, total = _layout(outputs)
            frame = _frame({"ok": True, "where": "shm", "outputs": entries})
            cached = self._replies[key] = (entries, total, frame)
        return cached

    def _reply(self, request: _Request, outputs: list[np.ndarray]) -> None:
        entries, total, frame = self._reply_layout(outputs)
        try:
            if request.mapping is not None and total <= len(request.mapping):
                for entry, array in zip(entries, outputs, strict=True):
                    _view(request.mapping, entry)[...] = array
                request.conn.sendall(frame)
            else:
                payload = bytearray(total)
                for entry, array in zip(entries, outputs, strict=True):
                    _view(payload, entry)[...] = array
                _send(request.conn, {"ok": True, "where": "inline", "outputs": entries}, payload)
        except OSError:
            self._drop(request.conn)

    def _reply_error(self, request: _Request, kind: str, message: str) -> None:
        self.stats["errors"] += 1
        try:
            _send(request.conn, {"ok": False, "kind": kind, "message": message})
        except OSError:
            self._drop(request.conn)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


class _Control:
    """The parent's end of the server's stdin: "stop", or EOF when the parent dies."""

    def fileno(self) -> int:
        return sys.stdin.fileno()

    def recv(self) -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.strip()


def _server_main(config: dict) -> None:
    """Entry point of the server process: `python -m panoptes.models CONFIG`."""
    # SIGTERM (the runtime stopping the node) unwinds through `finally` so we clean up.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    out = sys.stdout
    sys.stdout = sys.stderr  # stdout carries the one status line the parent waits for
    try:
        server = _Server(config)
    except BaseException as exc:
        out.write(json.dumps({"status": "error", "detail": f"{type(exc).__name__}: {exc}"}))
        out.write("\n")
        out.flush()
        return
    out.write(json.dumps({"status": "ready"}) + "\n")
    out.flush()
    try:
        server.serve_forever(_Control())
    finally:
        server.close()


class ModelServer:
    """Starts and stops the server process of one model node instance."""

    def __init__(
        self,
        model: Any,
        *,
        name: str = "model",
        target: str = "auto",
        intra_op_threads: int | None = None,
        allow_spinning: bool = True,
        max_batch: int = 8,
        socket_dir: str | Path | None = None,
    ) -> None:
        self.model_path = Path(getattr(model, "path", model))
        self.name = name
        self.tag = server_tag(name)
        self._config = {
            "model": str(self.model_path),
            "tag": self.tag,
            "target": target,
            "intra_op_threads": intra_op_threads,
            "allow_spinning": allow_spinning,
            "max_batch": max_batch,
        }
        self._socket_dir = socket_dir
        self._dir: Path | None = None
        self._process: subprocess.Popen | None = None
        self._ready = False
        self.address: Path | None = None

    def start(self, timeout: float = 120.0) -> ModelServer:
        self.spawn()
        try:
            ready = self.poll_ready(timeout)
        except BaseException:
            self.stop()
            raise
        if not ready:
            self.stop()
            raise ModelServerError(f"model server {self.name!r} did not start in {timeout}s")
        return self

    def spawn(self) -> None:
        """Start the server process without waiting for it to load its model.

        A restart (after the process died) serves the SAME address, so clients that
        were connected reconnect to it without being told anything.
        """
        if self._process is not None:
            if self._process.poll() is None:
                raise ModelServerError(f"model server {self.name!r} is already running")
            self._release(self._process)
        # A fresh interpreter (not fork, not multiprocessing's spawn): nothing of the
        # caller's threads, ONNX Runtime pools or __main__ module is carried over.
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="panoptes-model-", dir=self._socket_dir))
            if len(os.fsencode(self._dir / "model.sock")) > _MAX_SOCKET_PATH:
                # socket_dir is deep (a project in a long path): Unix socket addresses
                # are limited, so the socket goes to a short private folder instead.
                self._dir.rmdir()
                self._dir = Path(tempfile.mkdtemp(prefix="pnpt-model-"))
        self._dir.mkdir(mode=0o700, exist_ok=True)
        self.address = self._dir / "model.sock"
        with contextlib.suppress(FileNotFoundError):
            self.address.unlink()  # left behind by a server that was killed
        shm.sweep(self.tag)  # the slots of clients that died with it
        self._ready = False
        config = json.dumps({**self._config, "address": str(self.address)})
        self._process = subprocess.Popen(
            [sys.executable, "-m", "panoptes.models", config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def poll_ready(self, timeout: float = 0.0) -> bool:
        """True once the server serves; False if it is still loading after ``timeout``.

        Raises ModelServerError when the process reports a failure or exits first.
        """
        if self._ready:
            return True
        if self._process is None or self._process.stdout is None:
            raise ModelServerError(f"model server {self.name!r} is not started")
        with selectors.DefaultSelector() as sel:
            sel.register(self._process.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return False
        line = self._process.stdout.readline()
        status = json.loads(line) if line.strip() else {}
        if status.get("status") != "ready":
            detail = status.get("detail") or f"it exited with code {self._process.wait(10)}"
            raise ModelServerError(f"model server {self.name!r} failed to start: {detail}")
        self._ready = True
        return True

    @staticmethod
    def _release(process: subprocess.Popen) -> None:
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code of a server process that ended (None while it runs)."""
        return self._process.poll() if self._process is not None else None

    def client(self, timeout: float | None = None) -> ModelClient:
        if self.address is None:
            raise ModelServerError("the model server is not started")
        return ModelClient(self.address, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.write("stop\n")
                process.stdin.close()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(2.0)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._release(process)
        self._ready = False
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        shm.sweep(self.tag)

    def __enter__(self) -> ModelServer:
        return self if self._process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- client ------------------------------------------------------------------------------

_serials = itertools.count()


class _Connection:
    """One socket and one shared-memory slot; used by one thread at a time."""

    def __init__(self, address: Path, timeout: float | None, wait: float = 0.0) -> None:
        # ``wait``: how long to keep trying while nothing listens (a restarting server).
        deadline = time.monotonic() + wait
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(str(address))
                self.hello, _ = _recv(self.sock)
                break
            except OSError as exc:
                self.sock.close()
                # Nothing listens yet, while the server's directory remains (a stopped
                # server removes it: then there is nothing to wait for).
                # A dying or just-restarted server may also reset the connection.
                down = isinstance(exc, FileNotFoundError | ConnectionError)
                if not down or not address.parent.is_dir() or time.monotonic() >= deadline:
                    raise ModelServerError(
                        f"cannot reach the model server at {address}: {exc}"
                    ) from exc
                time.sleep(0.1)
        self.tag = self.hello["tag"]
        self.pid = os.getpid()
        # Blocking from here on; a call's timeout bounds the wait for its reply
        # (_wait_reply), whatever timeout the caller sets per call.
        self.sock.settimeout(None)
        self._poll = select.poll()
        self._poll.register(self.sock, select.POLLIN)
        self.slot: shm.Segment | None = None
        self.hint = 0  # outputs that came back inline: make the next slot big enough
        self.broken = False  # the server went away (crashed or restarted)
        self.timeout = timeout  # seconds a call may wait for its reply (None: no limit)
        self._buf = bytearray(_RECV_BUF)
        # Repeated calls with the same input layout reuse the encoded request and the
        # slot views; a reply like the previous one reuses its output views.
        self._request: tuple[tuple, bytes, list[np.ndarray]] | None = None
        self._reply: tuple[bytes, list[np.ndarray]] | None = None

    def set_timeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    def _wait_reply(self, started: float) -> None:
        """Return once the reply can be read; TimeoutError after ``self.timeout``.

        Measured: spinning here instead of sleeping in poll gained nothing (the kernel
        runs the woken server on the caller's CPU, so the caller is not asleep on an
        idle one); a plain poll it is.
        """
        left = None if self.timeout is None else (started + self.timeout - time.perf_counter())
        if (left is not None and left <= 0) or not self._poll.poll(
            None if left is None else left * 1e3
        ):
            raise TimeoutError(f"no reply within {self.timeout} s")

    def _ensure_slot(self, size: int) -> shm.Segment:
        if self.slot is None or self.slot.size < size:
            self._request = self._reply = None  # their views are of the old slot
            if self.slot is not None:
                self.slot.destroy()
            size = max(size, 1 << 16)
            size = 1 << (size - 1).bit_length()  # powers of two: few regrowths
            name = shm.segment_name(self.tag, os.getpid(), next(_serials))
            self.slot = shm.Segment(name, size)
        return self.slot

    def _prepare(self, inputs: Mapping[str, Any]) -> tuple[bytes, list[np.ndarray], list]:
        """The encoded request and the slot views to copy the inputs into."""
        arrays = [np.asarray(a) for a in inputs.values()]
        key = tuple((name, a.dtype.str, a.shape) for name, a in zip(inputs, arrays, strict=True))
        if self._request is not None and self._request[0] == key:
            return self._request[1], self._request[2], arrays
        entries, total = _layout(arrays)
        slot = self._ensure_slot(max(total, self.hint))
        for entry, name in zip(entries, inputs, strict=True):
            entry["name"] = name
        frame = _frame({"op": "run", "shm": slot.name, "inputs": entries})
        views = [_view(slot.buf, e) for e in entries]
        self._request = (key, frame, views)
        return frame, views, arrays

    def call(self, inputs: Mapping[str, Any]) -> list[np.ndarray]:
        frame, views, arrays = self._prepare(inputs)
        for view, array in zip(views, arrays, strict=True):
            np.copyto(view, array)  # the one copy of the inputs: into the shared slot
        try:
            started = time.perf_counter()
            self.sock.sendall(frame)
            self._wait_reply(started)
            head, payload = _recv_raw(self.sock, self._buf)
        except (OSError, ConnectionError, ValueError) as exc:
            self.broken = not isinstance(exc, TimeoutError)
            raise ModelServerError(f"lost the model server: {exc}") from exc
        if self._reply is not None and self._reply[0] == head:
            return [v.copy() for v in self._reply[1]]  # the slot is reused: copy out
        reply = json.loads(head)
        if not reply["ok"]:
            error = ModelInputError if reply["kind"] == "input" else ModelServerError
            raise error(reply["message"])
        if reply["where"] == "inline":
            self.hint = len(payload)
            self._request = None  # the next call makes a slot big enough for the outputs
            return [_view(payload, e) for e in reply["outputs"]]  # payload is ours alone
        assert self.slot is not None
        outputs = [_view(self.slot.buf, e) for e in reply["outputs"]]
        self._reply = (head, outputs)
        return [v.copy() for v in outputs]

    def stats(self) -> dict:
        started = time.perf_counter()
        _send(self.sock, {"op": "stats"})
        self._wait_reply(started)  # bounded by the timeout: a stopped server cannot hang us
        return _recv(self.sock, self._buf)[0]

    def close(self) -> None:
        self.sock.close()
        self._request = self._reply = None  # views of the slot: release before unmapping
        if self.slot is not None:
            self.slot.destroy()
            self.slot = None


def _close_all(connections: list[_Connection]) -> None:
    for c in connections:
        c.close()
    connections.clear()


class ModelClient:
    """Calls a model server; safe to share between threads (one connection per thread)."""

    def __init__(
        self,
        address: str | Path,
        *,
        timeout: float | None = None,
        reconnect_wait: float = RECONNECT_WAIT,
    ) -> None:
        self.address = Path(address)
        self.timeout = timeout
        self.reconnect_wait = reconnect_wait
        self._connected_once = False
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        # Unlink our slots even if the caller forgets close() (also runs at exit).
        self._finalizer = weakref.finalize(self, _close_all, self._connections)
        self._connection()  # fail now, not at the first frame, if the server is unreachable

    def _connection(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        # After a fork the child must not talk over its parent's socket and slot.
        if conn is None or conn.pid != os.getpid():
            # The first connection fails fast (a wrong address is a mistake to report
            # now); later ones may meet a server being restarted: wait for it.
            wait = self.reconnect_wait if self._connected_once else 0.0
            conn = _Connection(self.address, self.timeout, wait=wait)
            self._connected_once = True
            with self._lock:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @property
    def inputs(self) -> list[dict]:
        """The model's inputs as the server reports them (name, shape, dtype)."""
        return self._connection().hello["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self._connection().hello["outputs"]

    def call(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model on `inputs` (name -> array); returns its outputs in order.

        When the connection breaks (the server crashed and the runtime restarts it on
        the same address), reconnects, waiting up to ``reconnect_wait`` seconds, and
        tries once more; ModelServerError if the server stays down.
        """
        conn = self._connection()
        try:
            return conn.call(inputs)
        except ModelServerError:
            if not conn.broken:
                raise
        return self._reconnect(conn).call(inputs)

    def _reconnect(self, old: _Connection) -> _Connection:
        timeout = old.timeout
        with self._lock:
            if old in self._connections:
                self._connections.remove(old)
        self._local.conn = None
        old.close()
        try:
            conn = _Connection(self.address, timeout, wait=self.reconnect_wait)
        except ModelServerError as exc:
            raise ModelServerError(
                f"lost the model server at {self.address} and it did not come back "
                f"(waited up to {self.reconnect_wait:g} s): {exc.__cause__ or exc}"
            ) from exc
        with self._lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def stats(self) -> dict[str, int]:
        """The server's counters: requests, model runs (fewer when batched), errors."""
        reply = self._connection().stats()
        return {k: reply[k] for k in ("requests", "runs", "errors")}

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
