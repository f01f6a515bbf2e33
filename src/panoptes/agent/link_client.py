"""The device's end of the link (panoptes.link): MQTT over mutual TLS with paho.

Connects as ``client_id = DeviceId`` with the device certificate; the last will is
``offline`` (retained) on the presence topic and ``online`` is published (retained)
on every connect; the retained desired state arrives on subscribe. paho reconnects
with capped backoff by itself. A heartbeat goes out every link.HEARTBEAT_SECONDS
while connected. Nothing is queued while offline: `publish` says False, and whoever
called it sends its current state again from `on_connected` (the contract: the
device's next report carries the state again).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from panoptes import link
from panoptes.agent import host
from panoptes.agent.identity import Identity

log = logging.getLogger("panoptes.agent")

# paho's reconnect delay doubles from MIN to MAX: a device is back at most MAX seconds
# after its control plane returns (while it is away, attempts are refused connections;
# when it returns, 1,000 devices spread ~100 TLS handshakes a second over MAX).
RECONNECT_MIN, RECONNECT_MAX = 1, 10
KEEPALIVE = 30
PUBACK_TIMEOUT = 10.0


class LinkClient:
    """One MQTT connection for the whole agent (reconciler, jobs, log shipping)."""

    def __init__(
        self,
        identity: Identity,
        on_desired: Callable[[dict[str, Any]], None],
        *,
        on_connected: Callable[[], None] | None = None,
        heartbeat_seconds: float = link.HEARTBEAT_SECONDS,
        alternate_softwares: Callable[[], list[str]] | None = None,
    ) -> None:
        broker = identity.broker
        if broker is None:
            raise ValueError(
                f"{identity.folder / 'provisioning.json'} names no Broker (mqtts://host:port): "
                "provision the device again from a control plane with the device link enabled"
            )
        self.identity = identity
        self.device_id = identity.device_id
        self.host, self.port = broker
        self.on_desired = on_desired
        self.on_connected = on_connected
        self.heartbeat_seconds = heartbeat_seconds
        self.alternate_softwares = alternate_softwares
        self.connected = threading.Event()
        self.last_error = ""
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        c.tls_set_context(self.identity.client_tls())
        c.will_set(self.topic(link.PRESENCE), link.OFFLINE, qos=1, retain=True)
        c.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        c.on_connect = self._connected
        c.on_disconnect = self._disconnected
        c.on_message = self._message
        return c

    def topic(self, kind: str) -> str:
        return link.topic(self.device_id, kind)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> LinkClient:
        self._client.connect_async(self.host, self.port, keepalive=KEEPALIVE)
        self._client.loop_start()
        self._heartbeat = threading.Thread(target=self._beat, name="agent-heartbeat", daemon=True)
        self._heartbeat.start()
        return self

    def stop(self) -> None:
        """Say offline (a clean exit sends no last will), then disconnect."""
        self._stop.set()
        if self.connected.is_set():
            with contextlib.suppress(Exception):
                info = self._client.publish(
                    self.topic(link.PRESENCE), link.OFFLINE, qos=1, retain=True
                )
                info.wait_for_publish(timeout=3)
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()
        if self._heartbeat is not None:
            self._heartbeat.join(5)

    # -- paho callbacks (on paho's network thread) -----------------------------------

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.last_error = f"the broker refused the connection: {reason}"
            log.warning("link: %s", self.last_error)
            return
        self.last_error = ""
        log.info("link: connected to %s:%s as %s", self.host, self.port, self.device_id)
        client.publish(self.topic(link.PRESENCE), link.ONLINE, qos=1, retain=True)
        client.subscribe(self.topic(link.DESIRED), qos=1)
        self.connected.set()
        self.publish(link.REPORT, self.heartbeat(), confirm=False)  # paho's own thread
        if self.on_connected is not None:
            # Off paho's thread: the callback publishes, and may take a while.
            threading.Thread(target=self._run_on_connected, daemon=True).start()

    def _run_on_connected(self) -> None:
        try:
            assert self.on_connected is not None
            self.on_connected()
        except Exception:
            log.exception("link: on_connected")

    def _disconnected(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stop.is_set():
            self.last_error = f"disconnected ({reason}); reconnecting"
            log.warning("link: %s", self.last_error)

    def _message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self.topic(link.DESIRED):
            return
        try:
            desired = link.decode(msg.payload)
        except ValueError as exc:
            log.warning("link: ignoring a desired state that is not JSON: %s", exc)
            return
        if desired.get("DeviceId") not in (None, self.device_id):
            log.warning("link: ignoring a desired state for %s", desired.get("DeviceId"))
            return
        try:
            self.on_desired(desired)
        except Exception:
            log.exception("link: handling the desired state")

    # -- sending ---------------------------------------------------------------------

    def publish(self, kind: str, message: dict[str, Any], confirm: bool = True) -> bool:
        """Send ``message`` on this device's ``kind`` topic (link.REPORT, link.LOGS).

        True once the broker acknowledged it (QoS 1 PUBACK; with ``confirm=False``, once
        handed to a connected client). False while offline or when no PUBACK came in
        time: nothing is queued, the caller keeps what it must send again.
        """
        if not self.connected.is_set():
            return False
        info = self._client.publish(self.topic(kind), link.encode(message), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        if not confirm:
            return True
        try:
            info.wait_for_publish(PUBACK_TIMEOUT)
        except (RuntimeError, ValueError):  # the connection went away meanwhile
            return False
        return info.is_published()

    def report(self, report_type: str, **fields: Any) -> bool:
        """``report(link.REPORT_HEALTH, ApplicationInstanceId=..., ...)``."""
        return self.publish(link.REPORT, {"Type": report_type, **fields})

    def heartbeat(self) -> dict[str, Any]:
        return {
            "Type": link.REPORT_HEARTBEAT,
            "Time": datetime.now(UTC).isoformat(),
            "CurrentSoftware": host.software_version(),
            "SerialNumber": host.serial_number(),
            "NetworkStatus": host.network_status(),
            "AlternateSoftwares": self.alternate_softwares() if self.alternate_softwares else [],
        }

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            if self.connected.is_set():
                try:
                    self.publish(link.REPORT, self.heartbeat(), confirm=False)
                except Exception:
                    log.exception("link: heartbeat")
