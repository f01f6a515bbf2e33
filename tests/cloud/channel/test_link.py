"""The device link end to end: real TLS, a real broker (embedded amqtt and Mosquitto),
the bridge inside a running control plane, devices provisioned through the real
exchange route, the API read through boto3."""

from __future__ import annotations

import hashlib
import json
import queue
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from api_helpers import deploy_params, publish_sample_app
from link_support import WAIT, LinkStack, connect_outcome, https_get, link_stack, wait_until

from panoptes import link
from panoptes.cloud.channel.certs import issue, write_pair
from panoptes.cloud.services.provisioning import PlatformCA

pytestmark = pytest.mark.slow


def describe(ls: LinkStack, device_id: str) -> dict:
    return ls.api.client().describe_device(DeviceId=device_id)


def instance_status(ls: LinkStack, instance_id: str) -> str:
    listed = ls.api.client().list_application_instances()["ApplicationInstances"]
    return next(i["Status"] for i in listed if i["ApplicationInstanceId"] == instance_id)


# --- who may connect ------------------------------------------------------------------


def test_tls_refuses_a_client_without_a_platform_certificate(linked: LinkStack, tmp_path: Path):
    no_cert = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder")
    no_cert.tls_set(ca_certs=str(linked.ca))
    assert connect_outcome(no_cert, linked.broker_port) != "Success"
    no_cert.loop_stop()

    # A certificate with the right shape from another CA (its own platform).
    other_ca = PlatformCA.load_or_create(tmp_path / "other", datetime.now(UTC))
    device = linked.device("real-one")
    forged = write_pair(tmp_path / "forged", "dev", *issue(other_ca, device.id, datetime.now(UTC)))
    impostor = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device.id)
    impostor.tls_set(ca_certs=str(linked.ca), certfile=str(forged.cert), keyfile=str(forged.key))
    assert connect_outcome(impostor, linked.broker_port) != "Success"
    impostor.loop_stop()

    # The device endpoint refuses both at the handshake too.
    ctx = ssl.create_default_context(cafile=str(linked.ca))
    ctx.load_cert_chain(str(forged.cert), str(forged.key))
    with pytest.raises(OSError):
        https_get(linked.device_port, link.DEVICE_HTTP_DESIRED, ctx)
    # ... while the real certificate gets its desired state.
    status, body = device.https(link.DEVICE_HTTP_DESIRED)
    assert status == 200 and json.loads(body)["DeviceId"] == device.id


def test_a_device_reaches_only_its_own_topics(linked: LinkStack):
    a, b = linked.device("device-a"), linked.device("device-b")
    client_a = a.connect()
    state = a.desired(lambda s: s["DeviceId"] == a.id, "its own desired state")
    assert state["Revision"] >= 1
    # B's desired state is published (retained) too, but never reaches A.
    client_a.subscribe(link.topic(b.id, link.DESIRED), qos=1)
    client_a.subscribe(f"{link.TOPIC_ROOT}/+/desired", qos=1)
    b_client = b.connect()
    b.desired(lambda s: s["DeviceId"] == b.id, "B's own desired state")
    # A heartbeat forged by A on B's report topic does not bring B online.
    forged = {"Type": link.REPORT_HEARTBEAT, "CurrentSoftware": "6.6.6"}
    client_a.publish(link.topic(b.id, link.REPORT), link.encode(forged), qos=1)
    a.online(client_a)
    wait_until(lambda: describe(linked, a.id)["DeviceConnectionStatus"] == "ONLINE", "A online")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            message = a.messages.get(timeout=0.2)
        except queue.Empty:
            continue
        assert b.id not in message.topic, f"A received {message.topic}"
    b_described = describe(linked, b.id)
    assert b_described["DeviceConnectionStatus"] == "NOT_AVAILABLE"
    assert "CurrentSoftware" not in b_described
    # A client id that is not the certificate's device id is refused (embedded) or
    # confined to the certificate's topics (Mosquitto: the CN is the user name).
    if linked.broker_kind == "embedded":
        other_id = a.mqtt_client(client_id=b.id, will=False)
        assert connect_outcome(other_id, linked.broker_port) == "Not authorized"
    b_client.loop_stop()


# --- what devices report ----------------------------------------------------------------


def test_heartbeat_puts_the_device_online_and_the_last_will_offline(linked: LinkStack):
    device = linked.device("lobby")
    before = describe(linked, device.id)
    assert before["DeviceConnectionStatus"] == "NOT_AVAILABLE"  # no heartbeat yet
    client = device.connect()
    device.online(client, software="0.3.1")
    d = wait_until(
        lambda: (x := describe(linked, device.id))["DeviceConnectionStatus"] == "ONLINE" and x,
        "ONLINE",
    )
    assert d["ProvisioningStatus"] == "SUCCEEDED" and d["DeviceAggregatedStatus"] == "ONLINE"
    assert d["CurrentSoftware"] == "0.3.1" and d["SerialNumber"] == "SN-0001"
    lease = d["LeaseExpirationTime"]
    now = datetime.now(UTC)
    assert now < lease <= now + timedelta(seconds=link.LEASE_SECONDS + 1)
    net = d["CurrentNetworkingStatus"]
    assert net["Ethernet0Status"]["IpAddress"] == "10.0.0.9"
    assert d["LatestSoftware"]  # the settings' version while none is published
    listed = linked.api.client().list_devices()["Devices"]
    assert next(x for x in listed if x["DeviceId"] == device.id)["LeaseExpirationTime"] == lease

    # The connection dies without a DISCONNECT: the broker publishes the last will.
    client.loop_stop()
    client.socket().close()
    wait_until(
        lambda: describe(linked, device.id)["DeviceConnectionStatus"] == "OFFLINE", "OFFLINE"
    )
    assert describe(linked, device.id)["DeviceAggregatedStatus"] == "OFFLINE"


def test_unusable_reports_are_dropped_and_the_bridge_carries_on(linked: LinkStack):
    device = linked.device("noisy")
    client = device.connect()
    report = link.topic(device.id, link.REPORT)
    for garbage in (b"not json", b"[1, 2]", b'{"Type": "warp-drive"}'):
        client.publish(report, garbage, qos=1).wait_for_publish(WAIT)
    device.report(
        client,
        {"Type": link.REPORT_INSTANCE, "ApplicationInstanceId": "applicationInstance-nope",
         "Status": "DEPLOYMENT_SUCCEEDED"},
    )  # fmt: skip
    device.online(client, software="0.4.0")
    wait_until(
        lambda: describe(linked, device.id).get("CurrentSoftware") == "0.4.0",
        "the heartbeat after the garbage",
    )


# --- what devices receive -------------------------------------------------------------


def _deploy_and_follow(ls: LinkStack) -> None:
    device = ls.device("camera-box")
    client = device.connect()
    device.online(client)
    publish_sample_app(ls.api)
    api = ls.api.client()
    instance = api.create_application_instance(**deploy_params(ls.api, device.id))[
        "ApplicationInstanceId"
    ]
    state = device.desired(
        lambda s: any(a["ApplicationInstanceId"] == instance for a in s["ApplicationInstances"]),
        "the new instance",
    )
    app = next(a for a in state["ApplicationInstances"] if a["ApplicationInstanceId"] == instance)
    assert app["Desired"] == "RUNNING" and json.loads(app["Manifest"])["nodeGraph"]
    assert app["RuntimeRoleArn"].endswith(":role/panorama-sample-runtime")
    camera = next(iter(app["Cameras"].values()))
    assert camera["Password"] == "s3cr3t-pw"  # decrypted for this device only
    assert camera["StreamUrl"].startswith("rtsp://")
    names = {p["Name"] for p in state["Packages"]}
    assert {"SAMPLE_CODE", "SQUEEZENET_PYTORCH"} <= names
    model = next(p for p in state["Packages"] if p["Name"] == "SQUEEZENET_PYTORCH")
    assert model["Manifest"]["nodePackage"]["name"] == "SQUEEZENET_PYTORCH"
    assert all(a["Path"].startswith(link.DEVICE_HTTP_ASSETS + "/") for a in model["Assets"])
    assert instance_status(ls, instance) == "DEPLOYMENT_PENDING"

    device.report(client, {"Type": link.REPORT_ACK, "Revision": state["Revision"]})
    wait_until(lambda: instance_status(ls, instance) == "DEPLOYMENT_REQUESTED", "REQUESTED")
    for status in ("DEPLOYMENT_IN_PROGRESS", "DEPLOYMENT_SUCCEEDED"):
        device.report(
            client,
            {"Type": link.REPORT_INSTANCE, "ApplicationInstanceId": instance, "Status": status,
             "StatusDescription": None, "RuntimeStates": None},
        )  # fmt: skip
        wait_until(lambda s=status: instance_status(ls, instance) == s, status)
    device.report(
        client,
        {"Type": link.REPORT_HEALTH, "ApplicationInstanceId": instance, "HealthStatus": "RUNNING",
         "Nodes": {n: "RUNNING" for n in app["NodeSignals"]}},
    )  # fmt: skip
    wait_until(
        lambda: (
            api.describe_application_instance(ApplicationInstanceId=instance)["HealthStatus"]
            == "RUNNING"
        ),
        "health RUNNING",
    )

    # Removal reaches the device as Desired REMOVED, in a new revision.
    api.remove_application_instance(ApplicationInstanceId=instance)
    removal = device.desired(
        lambda s: any(
            a["ApplicationInstanceId"] == instance and a["Desired"] == "REMOVED"
            for a in s["ApplicationInstances"]
        ),
        "the removal",
    )
    assert removal["Revision"] > state["Revision"]


def test_a_deployment_reaches_the_device_and_its_reports_move_the_status(linked: LinkStack):
    _deploy_and_follow(linked)


def test_deployment_flow_on_postgresql(tmp_path: Path):
    with link_stack("postgresql", "embedded", tmp_path) as ls:
        _deploy_and_follow(ls)


def test_a_retained_desired_state_waits_for_a_device_that_connects_later(linked: LinkStack):
    device = linked.device("late-riser")
    job = linked.api.client()
    # Heartbeat once so the device is provisioned (jobs need SUCCEEDED), then leave.
    first = device.connect()
    device.online(first)
    wait_until(lambda: describe(linked, device.id)["ProvisioningStatus"] == "SUCCEEDED", "up")
    first.disconnect()
    first.loop_stop()
    bridge = linked.api.server.link.bridge
    assert bridge is not None
    before = bridge.published_revision(device.id) or 0
    job.create_job_for_devices(DeviceIds=[device.id], JobType="REBOOT")
    wait_until(  # published (retained) while the device is away
        lambda: (bridge.published_revision(device.id) or 0) > before, "the new revision"
    )
    device.connect()
    state = device.desired(lambda s: s["Jobs"], "the reboot job")
    assert state["Jobs"][0]["JobType"] == "REBOOT"


# --- deleted devices --------------------------------------------------------------------


def test_a_deleted_devices_certificate_stops_working(linked: LinkStack):
    device = linked.device("short-lived")
    client = device.connect()
    device.desired(lambda s: s["DeviceId"] == device.id, "its desired state")
    linked.api.client().delete_device(DeviceId=device.id)
    status, body = device.https(link.DEVICE_HTTP_DESIRED)
    assert status == 403 and b"revoked" in body
    if linked.broker_kind == "embedded":
        # Dropped at once, and refused when it comes back.
        wait_until(lambda: not client.is_connected(), "the broker to drop the session")
        client.loop_stop()
        again = device.mqtt_client()
        assert connect_outcome(again, linked.broker_port) == "Not authorized"
    # Its retained desired state is cleared: a new subscriber (the bridge's
    # identity may read every device's topics) gets nothing.
    bridge = linked.api.server.link.bridge
    assert bridge is not None
    wait_until(lambda: bridge.cleared(device.id), "the bridge to clear the topic")
    creds = linked.api.server.link.credentials
    assert creds is not None
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{link.BRIDGE_IDENTITY}-t")
    watcher.tls_set_context(creds.bridge_context())
    retained: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    watcher.on_message = lambda _c, _u, m: retained.put(m)
    assert connect_outcome(watcher, linked.broker_port) == "Success"
    watcher.subscribe(link.topic(device.id, link.DESIRED), qos=1)
    time.sleep(2)
    payloads = []
    while not retained.empty():
        message = retained.get()
        if message.topic == link.topic(device.id, link.DESIRED):
            payloads.append(message.payload)
    assert all(not p for p in payloads), payloads  # at most the (empty) clearing itself
    watcher.loop_stop()


# --- bulk downloads -------------------------------------------------------------------


def test_asset_download_resumes_with_range(linked: LinkStack):
    device = linked.device("downloader")
    client = device.connect()
    device.online(client)
    publish_sample_app(linked.api)
    linked.api.client().create_application_instance(**deploy_params(linked.api, device.id))
    state = device.desired(lambda s: s["Packages"], "packages")
    asset = next(a for p in state["Packages"] for a in p["Assets"] if a["Size"] > 8)
    half = asset["Size"] // 2
    status, head = device.https(asset["Path"], {"Range": f"bytes=0-{half - 1}"})
    assert status == 206 and len(head) == half
    status, tail = device.https(asset["Path"], {"Range": f"bytes={half}-"})
    assert status == 206 and len(tail) == asset["Size"] - half
    assert hashlib.sha256(head + tail).hexdigest() == asset["Sha256"]
    status, whole = device.https(asset["Path"])
    assert status == 200 and hashlib.sha256(whole).hexdigest() == asset["Sha256"]
    status, _ = device.https(asset["Path"], {"Range": f"bytes={asset['Size']}-"})
    assert status == 416
    # Another device (without that application) may not read it.
    other = linked.device("nosy")
    status, body = other.https(asset["Path"])
    assert status == 404 and b"not an asset" in body


def test_software_images_for_ota(linked: LinkStack, tmp_path: Path):
    from panoptes.cloud.channel.software import publish_wheel

    wheel = tmp_path / "panoptes-9.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not really a wheel" * 100)
    published = publish_wheel(linked.api.s3(), wheel)
    assert published == "9.1.0"
    device = linked.device("updatable")
    client = device.connect()
    device.online(client, software="0.1.0")
    wait_until(
        lambda: describe(linked, device.id).get("LatestSoftware") == "9.1.0", "LatestSoftware"
    )
    described = describe(linked, device.id)
    assert described["DeviceAggregatedStatus"] == "UPDATE_NEEDED"
    linked.api.client().create_job_for_devices(
        DeviceIds=[device.id],
        JobType="OTA",
        DeviceJobConfig={
            "OTAJobConfig": {"ImageVersion": "9.1.0", "AllowMajorVersionUpdate": True}
        },
    )
    state = device.desired(lambda s: s["Jobs"] and "9.1.0" in s["Software"]["Images"], "the OTA")
    image = state["Software"]["Images"]["9.1.0"]
    assert state["Software"]["Latest"] == "9.1.0" and image["File"] == wheel.name
    status, body = device.https(image["Path"])
    assert status == 200 and hashlib.sha256(body).hexdigest() == image["Sha256"]
    assert len(body) == image["Size"] == wheel.stat().st_size
    job_id = state["Jobs"][0]["JobId"]
    for step in ("IN_PROGRESS", "DOWNLOADING", "VERIFYING", "COMPLETED"):
        device.report(client, {"Type": link.REPORT_JOB, "JobId": job_id, "Status": step})
    wait_until(
        lambda: describe(linked, device.id).get("CurrentSoftware") == "9.1.0", "the OTA to land"
    )
    device.desired(lambda s: not s["Jobs"], "the finished job to leave the desired state")


def test_an_ota_right_after_publishing_names_the_new_image(linked: LinkStack, tmp_path: Path):
    """The control plane caches the bucket listing; a wheel published a moment ago must
    still be in the desired state that carries the OTA job for it."""
    from panoptes.cloud.channel.software import publish_wheel

    device = linked.device("eager")
    client = device.connect()
    device.online(client, software="0.1.0")
    before = device.desired(lambda s: "Software" in s, "the software list")
    assert "0.5.0" not in before["Software"]["Images"]  # the listing is now cached
    wheel = tmp_path / "panoptes-0.5.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04 not really a wheel")
    publish_wheel(linked.api.s3(), wheel)
    linked.api.client().create_job_for_devices(
        DeviceIds=[device.id],
        JobType="OTA",
        DeviceJobConfig={"OTAJobConfig": {"ImageVersion": "0.5.0"}},
    )
    state = device.desired(lambda s: s["Jobs"], "the OTA job")
    assert "0.5.0" in state["Software"]["Images"], state["Software"]


def test_certificates_archive_names_the_link(linked: LinkStack):
    from api_helpers import read_archive

    out = linked.api.client().provision_device(Name="archived")
    info = read_archive(out["Certificates"])["provisioning.json"]
    assert info["DeviceEndpoint"] == f"https://127.0.0.1:{linked.device_port}"
    assert info["Broker"] == f"mqtts://127.0.0.1:{linked.broker_port}"
    assert read_archive(out["Certificates"])["ca.pem"] == linked.ca.read_text()


def test_log_batches_reach_the_registered_handler(linked: LinkStack):
    got: queue.Queue[tuple[str, dict]] = queue.Queue()
    linked.api.server.link.on_logs(lambda device_id, batch: got.put((device_id, batch)))
    device = linked.device("chatty")
    client = device.connect()
    batch = {
        "Group": link.device_log_group(device.id),
        "Stream": "agent",
        "Events": [{"timestamp": 1_700_000_000_000, "message": "hello"}],
        "Sequence": 1,
        "Dropped": 0,
    }
    client.publish(link.topic(device.id, link.LOGS), link.encode(batch), qos=1)
    assert got.get(timeout=WAIT) == (device.id, batch)
