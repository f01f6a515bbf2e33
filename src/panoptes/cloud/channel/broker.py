"""The embedded MQTT broker of single-node installs: amqtt behind our own TLS listener.

Why a thread with its own asyncio loop, not a child process: the connection gate
asks `DeviceView` (the database) whether a certificate is revoked, and DeleteDevice
must disconnect a live session at once; in-process both are a function call, a
child process would need its own database connection and an IPC channel. The
broker's work per device is small (a heartbeat every 10 s); installs that outgrow
one Python thread use Mosquitto (`mosquitto.py`).

Why our own listener: amqtt's TLS listener asks for client certificates but does
not require them (CERT_OPTIONAL), and it registers a session (taking over one with
the same client id, replacing its last will) before any auth plugin runs. So amqtt
gets an *external* listener: we accept the TLS connection with a context that
REQUIRES a CA-issued client certificate, identify it (`access.Gatekeeper`: revoked
certificates are refused), read the CONNECT packet and refuse a client id or a will
topic that is not the certificate's own, and only then hand the stream to
``Broker.external_connected``. Two small plugins finish the job inside amqtt: the
session's user name becomes the certificate's identity, and every publish,
subscribe and delivery is checked with `access.may_access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from panoptes.cloud.channel.access import Verdict, may_access
from panoptes.link import BRIDGE_IDENTITY

log = logging.getLogger(__name__)

#: The identity of the connection being handed to amqtt (set per connection task;
#: asyncio copies it into the tasks amqtt starts for its auth plugins).
_PEER: contextvars.ContextVar[str | None] = contextvars.ContextVar("panoptes_peer", default=None)
_LISTENER = "default"
#: A client that completed TLS must send CONNECT within this time.
CONNECT_TIMEOUT = 10.0


class CertificateAuth(BaseAuthPlugin):
    """Accepts exactly the connections our listener identified; user name = identity."""

    async def authenticate(self, *, session: Session) -> bool | None:
        identity = _PEER.get()
        if identity is None:
            return False
        session.username = identity
        return True


class TopicPolicy(BaseTopicPlugin):
    """Devices under their own root only; the bridge under all devices' roots."""

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        allowed = bool(session and topic and may_access(session.username, topic))
        if not allowed and action != Action.RECEIVE:
            who = session.username if session else None
            log.warning("MQTT %s on %r refused to %s", action, topic, who)
        return allowed


class _RecordingReader(ReaderAdapter):
    """Reads through to the stream and keeps what it read (the CONNECT packet)."""

    def __init__(self, inner: ReaderAdapter) -> None:
        self.inner, self.data = inner, bytearray()

    async def read(self, n: int = -1) -> bytes:
        chunk = await self.inner.read(n)
        self.data += chunk
        return chunk

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class _ReplayReader(ReaderAdapter):
    """Serves ``prefix`` first, then the stream: amqtt reads the CONNECT we checked."""

    def __init__(self, prefix: bytes, inner: ReaderAdapter) -> None:
        self.prefix, self.inner = bytearray(prefix), inner

    async def read(self, n: int = -1) -> bytes:
        if not self.prefix:
            return await self.inner.read(n)
        if n == -1:
            head, self.prefix = bytes(self.prefix), bytearray()
            return head + await self.inner.read(-1)
        head = bytes(self.prefix[:n])
        del self.prefix[:n]
        if len(head) < n:
            head += await self.inner.read(n - len(head))
        return head

    def feed_eof(self) -> None:
        self.inner.feed_eof()


def connect_problem(identity: str, connect: ConnectPacket) -> str | None:
    """Why a CONNECT from ``identity`` must be refused (None: it may proceed)."""
    client_id = connect.client_id or ""
    if identity == BRIDGE_IDENTITY:
        if not client_id.startswith(BRIDGE_IDENTITY):
            return f"the bridge's client id must start with {BRIDGE_IDENTITY}"
    elif client_id != identity:
        return f"client id {client_id!r} is not the certificate's device id {identity!r}"
    if connect.will_flag and not may_access(identity, connect.will_topic or ""):
        return f"last-will topic {connect.will_topic!r} is outside {identity}'s topics"
    return None


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("embedded broker: dropping a session failed: %s", future.exception())


async def _close(out: StreamWriterAdapter) -> None:
    with contextlib.suppress(OSError):  # the client may hang up first
        await out.close()


class EmbeddedBroker:
    """amqtt on ``host:port`` with mutual TLS, in a daemon thread with its own loop."""

    def __init__(
        self,
        context: ssl.SSLContext,
        identify: Callable[[bytes | None], Verdict],
        host: str = "127.0.0.1",
        port: int = 8883,
    ) -> None:
        self.context, self.identify = context, identify
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None
        self._server: asyncio.Server | None = None

    # -- lifecycle (called from any thread) ----------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="panoptes-broker", daemon=True
        )
        self._thread.start()
        ready.result(timeout)  # re-raises a failed start (port in use, bad certificate)

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            self._loop = self._thread = None
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        except Exception:  # a broker that fails to stop cleanly still stops its loop
            log.exception("embedded broker shutdown failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._loop = self._thread = None

    def disconnect(self, client_id: str) -> None:
        """Drop a live session (its device was deleted); its last will is published.

        Returns at once: the caller is an API request that must not wait on the broker."""
        if self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._disconnect(client_id), self._loop)
            future.add_done_callback(_log_failure)

    # -- inside the broker's loop ---------------------------------------------------------

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        except BaseException as exc:
            self._loop = None  # nothing to stop
            loop.close()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            # amqtt leaves tasks waiting (its broadcast loop): end them on this loop, or
            # closing it destroys them mid-await ("Event loop is closed" at exit).
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _start(self) -> None:
        config: dict[str, Any] = {
            "listeners": {_LISTENER: {"type": "external"}},
            "plugins": {
                f"{__name__}.CertificateAuth": {},
                f"{__name__}.TopicPolicy": {},
            },
        }
        self._broker = Broker(config, loop=asyncio.get_running_loop())
        await self._broker.start()
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, ssl=self.context, reuse_address=True
        )
        if self.port == 0:  # tests ask for any free port
            self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._broker is not None:
            await self._broker.shutdown()

    async def _disconnect(self, client_id: str) -> None:
        if self._broker is None:
            return
        found = self._broker.sessions.get(client_id)
        if found is not None:
            _session, handler = found
            await handler.handle_connection_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        loop = asyncio.get_running_loop()
        verdict = await loop.run_in_executor(None, self.identify, der)  # a database read
        recording = _RecordingReader(StreamReaderAdapter(reader))
        out = StreamWriterAdapter(writer)
        try:
            connect = await asyncio.wait_for(ConnectPacket.from_stream(recording), CONNECT_TIMEOUT)
        except Exception as exc:  # garbage, a timeout or a hang-up before CONNECT
            log.info("MQTT connection from %s dropped before CONNECT: %s", peer, exc)
            await _close(out)
            return
        problem = verdict.reason or connect_problem(verdict.identity or "", connect)
        if problem:
            log.warning("MQTT connection from %s refused: %s", peer, problem)
            with contextlib.suppress(OSError):
                await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(out)
            await _close(out)
            return
        assert self._broker is not None
        token = _PEER.set(verdict.identity)
        try:
            replay = _ReplayReader(bytes(recording.data), StreamReaderAdapter(reader))
            await self._broker.external_connected(replay, out, _LISTENER)
        finally:
            _PEER.reset(token)
