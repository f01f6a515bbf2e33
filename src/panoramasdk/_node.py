"""panoramasdk.node and its ports."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

from panoptes.media.ring import FrameRing, RingReader, RingWriter, wait_any
from panoptes.runtime import client as rt
from panoramasdk._media import media

# get() sleeps until a source wakes it (panoptes.media.ring.wait_any); a stream whose
# ring the runtime has not made yet is looked for this often.
ATTACH_POLL = 0.05
_CASTS = {"int32": int, "float32": float, "boolean": bool, "string": str}
_CLIENTS: weakref.WeakSet = weakref.WeakSet()  # model clients of this process


def _unlink_slots_on_sigterm() -> None:
    """Close the model clients before SIGTERM (how the runtime stops an app) kills us.

    The default SIGTERM ends Python without cleanup; the clients' shared-memory slots
    would then be left to the resource tracker, which removes them but writes a
    "leaked shared_memory" warning into the application's console log. An app that
    handles SIGTERM itself keeps its handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (node() is made there in practice)
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def close_then_die(signum: int, frame: Any) -> None:
        for client in list(_CLIENTS):
            with contextlib.suppress(Exception):
                client.close()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # and die of it, as without this handler

    signal.signal(signal.SIGTERM, close_then_die)


class port:
    """One input or output of the node, named as in the package's interface."""

    def __init__(self, name: str, spec: Mapping[str, Any], config: rt.NodeConfig) -> None:
        self.name = name
        self.type = spec.get("type", "media")
        self._spec = spec
        self._config = config

    def get(self, timeout: float | None = None) -> Any:
        raise TypeError(f"{self.name} is an output: use put()")

    def put(self, data: Any) -> None:
        raise TypeError(f"{self.name} is an input: use get()")

    def __repr__(self) -> str:
        return f"<panoramasdk.port {self.name} ({self.type})>"


class _ParameterPort(port):
    def get(self, timeout: float | None = None) -> Any:
        value = self._spec.get("value")
        cast = _CASTS.get(self.type)
        if cast is bool and isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return cast(value) if cast is not None and value is not None else value


class _MediaInput(port):
    """Frames of every camera stream wired to this input, newest first-come."""

    def __init__(self, name: str, spec: Mapping[str, Any], config: rt.NodeConfig) -> None:
        super().__init__(name, spec, config)
        self._streams: list[dict[str, Any]] = list(spec.get("rings", []))
        self._readers: list[RingReader | None] = [None] * len(self._streams)
        self._last: list[Any] = [None] * len(self._streams)
        self._lock = threading.Lock()

    def _reader(self, i: int) -> RingReader | None:
        if self._readers[i] is None:
            try:
                self._readers[i] = RingReader(FrameRing.attach(self._streams[i]["ring"]))
            except FileNotFoundError:
                return None  # the runtime has not made that ring (yet)
        return self._readers[i]

    def get(self, timeout: float | None = None) -> list[media]:
        """The next frames: one media per stream; unchanged streams come back cached.

        Blocks until at least one stream has a new frame; with ``timeout`` (seconds)
        raises TimeoutError when none arrived in time.
        """
        self._config.mark_started()
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        with self._lock:
            if not self._streams:
                # An unconnected media input yields no streams (but does not spin).
                time.sleep(min(0.1, timeout) if timeout is not None else 0.1)
                return []
            while True:
                readers = [self._reader(i) for i in range(len(self._streams))]
                attached = [r for r in readers if r is not None]
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                wait = left
                if len(attached) < len(readers):  # look for the missing rings again soon
                    wait = ATTACH_POLL if left is None else min(left, ATTACH_POLL)
                if attached:
                    if wait_any(attached, wait):
                        break
                else:
                    time.sleep(wait)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{self.name}: no new frame within {timeout} s "
                        f"(streams: {', '.join(s['stream'] for s in self._streams)})"
                    )
            out = []
            for i, reader in enumerate(readers):
                if reader is None:
                    continue
                frame = reader.take()
                cached = frame is None
                if cached:
                    if self._last[i] is None:
                        continue  # this stream has not delivered any frame yet
                    frame = reader._frame(self._last[i].slot)  # held: still the same frame
                self._last[i] = frame
                s = self._streams[i]
                out.append(
                    media(
                        frame.image,
                        stream_id=frame.extra.get("stream_id", s["stream"]),
                        stream_uri=frame.extra.get("uri", s.get("uri", "")),
                        time_stamp=frame.time_stamp,
                        is_cached=cached,
                        _frame=frame,
                    )
                )
            return out


class _MediaOutput(port):
    def __init__(self, name: str, spec: Mapping[str, Any], config: rt.NodeConfig) -> None:
        super().__init__(name, spec, config)
        self._writer: RingWriter | None = None
        self._batch = 0
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, data: Any) -> None:
        """Send a list of media (e.g. what get() returned, annotated) downstream."""
        self._config.mark_started()
        if isinstance(data, media):
            data = [data]
        if not isinstance(data, list | tuple):
            raise TypeError(f"{self.name}.put() takes a list of panoramasdk.media")
        if not data:
            raise ValueError(f"{self.name}.put() got an empty list: put at least one media")
        for m in data:
            if not isinstance(m, media):
                raise TypeError(f"{self.name}.put(): {type(m).__name__} is not panoramasdk.media")
        ring = self._spec.get("ring")
        if not ring:
            return  # nothing consumes this output (no sink in the graph)
        with self._lock:
            if self._writer is None:
                self._writer = RingWriter(FrameRing.attach(ring))
            self._batch += 1
            for i, m in enumerate(data):
                image = _fit(m.image, self._writer.ring.capacity)
                seq = self._writer.write(
                    image,
                    time_stamp=tuple(m.time_stamp),
                    extra={"stream_id": m.stream_id, "uri": m.stream_uri, "ann": m._ann},
                    batch=self._batch,
                    index=i,
                    count=len(data),
                )
                if seq is None:
                    self.dropped += 1


def _fit(image: np.ndarray, capacity: int) -> np.ndarray:
    """Make ``image`` HxWx3 uint8 and small enough for a ring slot."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if img.nbytes > capacity:
        import cv2

        k = (capacity / img.nbytes) ** 0.5
        img = cv2.resize(img, (int(img.shape[1] * k), int(img.shape[0] * k)))
    return img


class _Ports:
    """``self.inputs`` / ``self.outputs``: one attribute per port of the interface."""

    def __init__(self, ports: dict[str, port]) -> None:
        self.__dict__.update(ports)
        self._names = tuple(ports)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"no port {name!r} in this node's interface (ports: {', '.join(self._names)})"
        )

    def __iter__(self):
        return iter(self.__dict__[n] for n in self._names)

    def __repr__(self) -> str:
        return f"<ports {', '.join(self._names)}>"


def _make_ports(config: rt.NodeConfig, side: str) -> _Ports:
    ports: dict[str, port] = {}
    for name, spec in getattr(config, side).items():
        if side == "outputs":
            ports[name] = _MediaOutput(name, spec, config)
        elif spec.get("type") == "media":
            ports[name] = _MediaInput(name, spec, config)
        else:
            ports[name] = _ParameterPort(name, spec, config)
    return _Ports(ports)


class node:
    """The code node this process runs as: ports, and calls to the model nodes.

    State is set up in ``__new__`` because most applications subclass ``node`` and
    never call ``super().__init__()``; calling it anyway is harmless.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> node:
        self = super().__new__(cls)
        config = rt.load()
        self._panoptes_config = config
        self.inputs = _make_ports(config, "inputs")
        self.outputs = _make_ports(config, "outputs")
        self._panoptes_models: dict[str, Any] = {}
        self._panoptes_lock = threading.Lock()
        if config.models:
            _unlink_slots_on_sigterm()
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _model_client(self, name: str) -> Any:
        client = self._panoptes_models.get(name)
        if client is not None:
            return client
        models = self._panoptes_config.models
        if name not in models:
            raise KeyError(
                f"no model node named {name!r} in this application "
                f"(model nodes: {', '.join(sorted(models)) or 'none'})"
            )
        with self._panoptes_lock:
            client = self._panoptes_models.get(name)
            if client is None:
                from panoptes.models.server import ModelClient  # heavy: only when used

                client = ModelClient(models[name])
                self._panoptes_models[name] = client
                _CLIENTS.add(client)
        return client

    def call(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> tuple:
        """Run inference on a model node: ``call(name, input)`` or ``call(input, name)``.

        ``input`` is a dict of arrays keyed by the model's input names, a media
        object (its image), or one array (single-input models). Returns a tuple of
        numpy arrays, one per model output. Other threads run while this waits.
        """
        self._panoptes_config.mark_started()
        name = kwargs.pop("name", None) or kwargs.pop("model_name", None)
        data = kwargs.pop("input", None)
        if data is None:
            data = kwargs.pop("inputs", None)
        rest = list(args)
        if name is None:
            names = [a for a in rest if isinstance(a, str)]
            if not names:
                raise TypeError("call() needs the model node's name")
            name = names[0]
            rest.remove(name)
        if data is None:
            if not rest:
                raise TypeError("call() needs the model's input")
            data = rest[0]
        if len(args) > 2 or kwargs:
            raise TypeError(f"call() got unexpected arguments: {list(kwargs) or args[2:]}")
        client = self._model_client(name)
        inputs = _inputs(data, client)
        client._connection().set_timeout(timeout)
        try:
            outputs = client.call(inputs)
        except Exception as exc:
            if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
                # The reply may still come: this connection is out of step, drop it.
                client._local.conn = None
                raise TimeoutError(f"model node {name!r} gave no answer in {timeout} s") from None
            raise
        return tuple(outputs)


def _inputs(data: Any, client: Any) -> dict[str, np.ndarray]:
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    if isinstance(data, media):
        data = data.image
    if isinstance(data, np.ndarray | list | tuple):
        names = [i["name"] for i in client.inputs]
        if len(names) != 1:
            raise ValueError(
                f"the model takes {len(names)} inputs ({', '.join(names)}): pass a dict"
            )
        return {names[0]: np.asarray(data)}
    raise TypeError(f"call() input must be a dict, media or array, not {type(data).__name__}")
