"""The bridge: the control plane's MQTT client (paho) between the broker and DeviceView.

Down: each device's desired state is published RETAINED on ``link.topic(id,
DESIRED)`` whenever its content changes: `notify(device_ids)` (called after API
operations that change it) wakes the publisher thread at once, and a periodic sweep
compares every linked device's revision with what this bridge published, so several
API workers, or a missed hook, still converge. A deleted device's topic is cleared
(an empty retained message). Statuses alone never make a new revision
(`device_view.content_digest`).

Up: reports, presence and logs of every device. Reports go through DeviceView (the
state tables); one the control plane cannot apply (unknown instance, invalid
transition, garbage) is logged and dropped, never raised: the device's next report
carries the state again. Log batches go to the handlers registered with `on_logs`.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from panoptes import link
from panoptes.cloud.errors import ResourceNotFound, ServiceError
from panoptes.cloud.services.device_view import DeviceView

log = logging.getLogger(__name__)

#: ``handler(device_id, message)`` for each log batch or applied report.
LogHandler = Callable[[str, dict[str, Any]], None]
_SWEEP = object()  # queue item: compare every device
_STOP = object()


class Bridge:
    def __init__(
        self,
        view: DeviceView,
        host: str,
        port: int,
        tls: ssl.SSLContext,
        *,
        sweep_seconds: float = 10.0,
        shared_group: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.view, self.host, self.port = view, host, port
        self.sweep_seconds = sweep_seconds
        #: With several control-plane workers on one broker, a shared subscription
        #: ($share/GROUP/...) hands each report to one of them (Mosquitto).
        self.shared_group = shared_group
        self.now = now
        self._observers: dict[str, list[LogHandler]] = {link.LOGS: [], link.REPORT: []}
        self._published: dict[str, int] = {}  # device -> revision this bridge published
        self._published_lock = threading.Lock()
        self._cleared: set[str] = set()  # deleted devices whose topic was cleared
        self._work: queue.Queue[object] = queue.Queue()
        self._connected = threading.Event()
        self._publisher: threading.Thread | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{link.BRIDGE_IDENTITY}-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        self.client.tls_set_context(tls)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> bool:
        """Connect (retrying in the background) and start publishing; True once up."""
        self._publisher = threading.Thread(
            target=self._publish_loop, name="panoptes-bridge-publisher", daemon=True
        )
        self._publisher.start()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        up = self._connected.wait(timeout)
        if not up:
            log.warning("bridge: broker %s:%s not reachable yet; retrying", self.host, self.port)
        return up

    def stop(self) -> None:
        self._work.put(_STOP)
        if self._publisher is not None:
            self._publisher.join(10)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def on_logs(self, handler: LogHandler) -> None:
        """Register ``handler(device_id, batch)`` for every log batch (link.LOGS)."""
        self.observe(link.LOGS, handler)

    def observe(self, kind: str, handler: LogHandler) -> None:
        """``handler(device_id, message)`` for every log batch (link.LOGS) or every
        report applied to the database (link.REPORT: metrics follow heartbeats)."""
        self._observers[kind].append(handler)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Publish an application's message (iot-data Publish); ConnectionError when
        the broker cannot take it now."""
        if not self.connected:
            raise ConnectionError("the bridge is not connected to the broker")
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"the broker refused the message ({mqtt.error_string(info.rc)})")

    def notify(self, device_ids: Iterable[str]) -> None:
        """Desired state of these devices may have changed: publish what changed."""
        for device_id in device_ids:
            self._work.put(device_id)

    def sweep(self) -> None:
        """Compare every device now (the periodic sweep, on demand)."""
        self._work.put(_SWEEP)

    def published_revision(self, device_id: str) -> int | None:
        """The revision this bridge last published for the device (None: none yet)."""
        with self._published_lock:
            return self._published.get(device_id)

    def cleared(self, device_id: str) -> bool:
        """Whether the (deleted) device's desired topic was cleared."""
        return device_id in self._cleared

    # -- publishing (one thread: revisions go out in order) --------------------------

    def _publish_loop(self) -> None:
        while True:
            try:
                item = self._work.get(timeout=self.sweep_seconds)
            except queue.Empty:
                item = _SWEEP
            if item is _STOP:
                return
            try:
                if item is _SWEEP:
                    self._sweep()
                else:
                    self._publish(str(item))
            except Exception:  # the database may be briefly away: next round retries
                log.exception("bridge: publishing desired state failed")

    def _sweep(self) -> None:
        if not self.connected:
            return
        linked = set(self.view.linked_devices())
        for device_id in sorted(linked):
            self._publish(device_id)
        with self._published_lock:
            gone = [d for d in self._published if d not in linked]
        for device_id in gone:
            self._publish(device_id)  # finds it deleted (or unlinked) and clears it

    def _publish(self, device_id: str) -> None:
        if not self.connected:
            return  # on (re)connect everything is compared again
        try:
            state = self.view.publishable_state(device_id)
        except ResourceNotFound:
            with self._published_lock:
                known = self._published.pop(device_id, None)
            if known is not None or device_id not in self._cleared:
                # Empty retained messages clear what the broker keeps for the device:
                # its desired state and its last presence (the will "offline").
                for kind in (link.DESIRED, link.PRESENCE):
                    self.client.publish(link.topic(device_id, kind), b"", qos=1, retain=True)
                self._cleared.add(device_id)
            return
        revision = state["Revision"]
        with self._published_lock:
            if self._published.get(device_id) == revision:
                return
        topic = link.topic(device_id, link.DESIRED)
        info = self.client.publish(topic, link.encode(state), qos=1, retain=True)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            with self._published_lock:
                self._published[device_id] = revision
            log.info("bridge: published desired state %s of %s", revision, device_id)

    # -- paho callbacks (paho's network thread) --------------------------------------

    def _subscriptions(self) -> list[tuple[str, int]]:
        topics = [f"{link.TOPIC_ROOT}/+/{kind}" for kind in (link.REPORT, link.PRESENCE, link.LOGS)]
        if self.shared_group:
            topics = [f"$share/{self.shared_group}/{t}" for t in topics]
        return [(t, 1) for t in topics]

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("bridge: broker refused the connection: %s", reason)
            return
        client.subscribe(self._subscriptions())
        with self._published_lock:
            self._published.clear()  # the broker may have lost its retained messages
        self._cleared.clear()
        self._connected.set()
        self._work.put(_SWEEP)
        log.info("bridge: connected to %s:%s", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.info("bridge: disconnected (%s)", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        parsed = link.parse_topic(message.topic)
        if parsed is None or not message.payload:
            return  # not ours, or a cleared retained message
        device_id, kind = parsed
        try:
            if kind == link.PRESENCE:
                self._presence(device_id, message.payload)
            elif kind == link.REPORT:
                report = link.decode(message.payload)
                self._report(device_id, report)
                self._tell(link.REPORT, device_id, report)
            elif kind == link.LOGS:
                self._tell(link.LOGS, device_id, link.decode(message.payload))
        except (ServiceError, ValueError, KeyError, TypeError) as exc:
            text = exc.message if isinstance(exc, ServiceError) else repr(exc)
            log.warning("bridge: dropped %s of %s: %s", kind, device_id, text)
        except Exception:  # never let one message kill the network thread
            log.exception("bridge: dropped %s of %s", kind, device_id)

    # -- applying what devices say -----------------------------------------------------

    def _presence(self, device_id: str, payload: bytes) -> None:
        text = payload.decode().strip().strip('"').lower()
        if text not in (link.ONLINE, link.OFFLINE):
            raise ValueError(f"presence must be {link.ONLINE!r} or {link.OFFLINE!r}")
        self.view.presence(device_id, text == link.ONLINE, self.now())

    def _report(self, device_id: str, report: dict[str, Any]) -> None:
        if apply_report(self.view, device_id, report, self.now()):
            self.notify([device_id])

    def _tell(self, kind: str, device_id: str, message: dict[str, Any]) -> None:
        for handler in list(self._observers[kind]):
            try:
                handler(device_id, message)
            except Exception:
                log.exception("bridge: %s observer failed for %s", kind, device_id)


def apply_report(view: DeviceView, device_id: str, report: dict[str, Any], now: datetime) -> bool:
    """Record one device report (link.REPORT) through ``view``; True when it may have
    changed the device's desired state (a finished removal, replacement or job).
    ServiceError / ValueError / KeyError for a report that cannot be applied."""
    kind = report.get("Type")
    if kind == link.REPORT_HEARTBEAT:
        alternates = report.get("AlternateSoftwares")
        view.heartbeat(
            device_id,
            now,
            current_software=report.get("CurrentSoftware"),
            serial_number=report.get("SerialNumber"),
            network_status=report.get("NetworkStatus"),
            alternate_softwares=(
                [a["Version"] if isinstance(a, dict) else str(a) for a in alternates]
                if isinstance(alternates, list)
                else None
            ),
        )
    elif kind == link.REPORT_INSTANCE:
        view.report_instance_status(
            device_id,
            report["ApplicationInstanceId"],
            report["Status"],
            now,
            report.get("StatusDescription"),
            report.get("RuntimeStates"),
        )
        return True
    elif kind == link.REPORT_HEALTH:
        view.report_health(
            device_id,
            report["ApplicationInstanceId"],
            report["HealthStatus"],
            now,
            report.get("Nodes"),
            report.get("OutputUrl"),
        )
    elif kind == link.REPORT_JOB:
        view.report_job_status(device_id, report["JobId"], report["Status"], now)
        if report.get("Reason"):
            log.info("bridge: job %s of %s: %s", report["JobId"], device_id, report["Reason"])
        return True
    elif kind == link.REPORT_ACK:
        view.acknowledge(device_id, int(report["Revision"]), now)
    else:
        raise ValueError(f"unknown report Type {kind!r}")
    return False
