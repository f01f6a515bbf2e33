"""Helpers for the device link tests, for real: a control plane with its broker (embedded
amqtt, or a Mosquitto this suite starts with the TLS configuration Panoptes writes), its bridge
and device endpoint, and test devices that provision through the real exchange
route and speak MQTT with paho and HTTPS with their own certificates."""

from __future__ import annotations

import getpass
import json
import queue
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from api_helpers import Stack, read_archive, running_stack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from panoptes import link
from panoptes.cloud.channel.mosquitto import write_config
from serve_support import free_port

MOSQUITTO = Path("/usr/sbin/mosquitto")
#: Upper bound of every wait in these tests (they end as soon as the thing happens).
WAIT = 20.0


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- brokers ------------------------------------------------------------------------


@contextmanager
def mosquitto(data_dir: Path) -> Iterator[int]:
    """/usr/sbin/mosquitto on a free port with `panoptes broker-config`'s TLS setup."""
    from panoptes.cloud.services.provisioning import PlatformCA

    if not MOSQUITTO.exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    ca = PlatformCA.load_or_create(data_dir, datetime.now(UTC))
    conf = write_config(
        data_dir / "mosquitto",
        ca,
        datetime.now(UTC),
        host="127.0.0.1",
        port=port,
        names=["127.0.0.1", "localhost"],
        # pytest's tmp folders are private to this user: Mosquitto must stay it.
        user=getpass.getuser(),
    )
    log = data_dir / "mosquitto.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(conf), "-v"], stdout=out, stderr=subprocess.STDOUT
        )

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited:\n{log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, "mosquitto to listen")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class LinkStack:
    """A control plane with its link: in this process (``stack``) or a `panoptes serve`."""

    url: str
    client: Callable[[], Any]  # a boto3 Panorama client
    broker_port: int
    device_port: int
    data_dir: Path
    broker_kind: str
    stack: Stack | None = None
    #: Devices made on this stack; their MQTT clients are closed with it.
    devices: list[TestDevice] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.data_dir / "ca" / "ca.pem"

    @property
    def api(self) -> Stack:
        assert self.stack is not None, "this control plane runs in another process"
        return self.stack

    def device(self, name: str) -> TestDevice:
        device = make_device(self, name)
        self.devices.append(device)
        return device


@contextmanager
def link_stack(db_kind: str, broker_kind: str, tmp: Path) -> Iterator[LinkStack]:
    data_dir = tmp / "data"
    device_port = free_port()

    @contextmanager
    def broker() -> Iterator[tuple[int, dict[str, Any]]]:
        if broker_kind == "embedded":
            port = free_port()
            yield port, {"broker": "embedded", "broker_port": port}
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            with mosquitto(data_dir) as port:
                yield port, {"broker": f"mqtts://127.0.0.1:{port}"}

    with (
        broker() as (port, options),
        running_stack(
            db_kind, data_dir, device_port=device_port, sweep_seconds=1.0, **options
        ) as stack,
    ):
        stack.server.start_link(timeout=WAIT)
        ls = LinkStack(stack.url, stack.client, port, device_port, data_dir, broker_kind, stack)
        try:
            assert wait_until(lambda: stack.server.link.bridge.connected, "the bridge")
            yield ls
        finally:
            # Clients left connected would retry a vanished broker for the rest of the run.
            for device in ls.devices:
                device.close()
            stack.server.stop_link()


# --- devices ------------------------------------------------------------------------


@dataclass
class TestDevice:
    """A provisioned device: its certificate files, MQTT clients, HTTPS calls."""

    __test__ = False  # not a test class for pytest

    id: str
    cert: Path
    key: Path
    ls: LinkStack
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    clients: list[mqtt.Client] = field(default_factory=list)

    def mqtt_client(self, client_id: str | None = None, will: bool = True) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or self.id,
            protocol=mqtt.MQTTv311,
        )
        client.tls_set(ca_certs=str(self.ls.ca), certfile=str(self.cert), keyfile=str(self.key))
        if will:
            presence = link.topic(self.id, link.PRESENCE)
            client.will_set(presence, link.OFFLINE.encode(), qos=1, retain=True)
        client.on_message = lambda _c, _u, m: self.messages.put(m)
        self.clients.append(client)
        return client

    def connect(self, **kwargs: Any) -> mqtt.Client:
        """Connected (CONNACK success) and subscribed to its desired state."""
        client = self.mqtt_client(**kwargs)
        outcome = connect_outcome(client, self.ls.broker_port)
        assert outcome == "Success", f"{self.id} could not connect: {outcome}"
        client.subscribe(link.topic(self.id, link.DESIRED), qos=1)
        return client

    def report(self, client: mqtt.Client, report: dict[str, Any]) -> None:
        topic = link.topic(self.id, link.REPORT)
        client.publish(topic, link.encode(report), qos=1).wait_for_publish(WAIT)

    def online(self, client: mqtt.Client, software: str = "0.1.0") -> None:
        topic = link.topic(self.id, link.PRESENCE)
        client.publish(topic, link.ONLINE.encode(), qos=1, retain=True).wait_for_publish(WAIT)
        self.report(
            client,
            {
                "Type": link.REPORT_HEARTBEAT,
                "Time": datetime.now(UTC).isoformat(),
                "CurrentSoftware": software,
                "SerialNumber": "SN-0001",
                "NetworkStatus": {
                    "Ethernet0Status": {"IpAddress": "10.0.0.9", "ConnectionStatus": "CONNECTED"},
                    "NtpStatus": {"ConnectionStatus": "CONNECTED"},
                },
            },
        )

    def desired(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first desired-state message that passes ``check``."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            if message.topic == link.topic(self.id, link.DESIRED) and message.payload:
                state = link.decode(message.payload)
                if check(state):
                    return state
        pytest.fail(f"{self.id} got no desired state with {what}")

    def https(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        ctx = ssl.create_default_context(cafile=str(self.ls.ca))
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return https_get(self.ls.device_port, path, ctx, headers)

    def close(self) -> None:
        for client in self.clients:
            client.loop_stop()
            client.disconnect()


def https_get(
    port: int, path: str, ctx: ssl.SSLContext, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=WAIT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def connect_outcome(client: mqtt.Client, port: int) -> str:
    """CONNACK's reason ("Success", "Not authorized", ...) or the error on the way."""
    result: queue.Queue[str] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, reason, _p: result.put(str(reason))
    client.on_disconnect = lambda _c, _u, _f, reason, _p: result.put(f"disconnected: {reason}")
    try:
        client.connect("127.0.0.1", port, keepalive=5)
    except (OSError, ssl.SSLError) as exc:
        return f"error: {exc}"
    client.loop_start()
    try:
        return result.get(timeout=WAIT)
    except queue.Empty:
        return "no answer"


def new_key_and_csr() -> tuple[bytes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def exchange(url: str, token: str, csr: str) -> tuple[int, dict[str, Any]]:
    """POST the one-time token and a CSR to the real exchange route."""
    body = json.dumps({"token": token, "csr": csr}).encode()
    request = urllib.request.Request(
        url + link.PROVISIONING_EXCHANGE, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def make_device(ls: LinkStack, name: str) -> TestDevice:
    out = ls.client().provision_device(Name=name)
    info = read_archive(out["Certificates"])["provisioning.json"]
    key_pem, csr = new_key_and_csr()
    status, body = exchange(ls.url, info["ProvisioningCredential"]["Token"], csr)
    assert status == 200, body
    folder = ls.data_dir.parent / "devices" / name
    folder.mkdir(parents=True)
    cert, key = folder / "device.pem", folder / "device.key"
    cert.write_text(body["certificate"])
    key.write_bytes(key_pem)
    return TestDevice(out["DeviceId"], cert, key, ls)
