"""The device link: what the control plane and a device agent say to each other.

This module is the contract between `panoptes.cloud.channel` (control-plane side)
and `panoptes.agent` (device side). It imports nothing of ours, so both sides, and
tests, can use it. Change it only together with both sides.

Transport
---------
* MQTT 3.1.1 over TLS. The broker's server certificate and every client certificate
  are issued by the platform CA (``ca.pem`` in the provisioning archive). A device
  connects with ``client_id = DEVICE_ID`` and its device certificate (CN = DEVICE_ID);
  the broker maps the certificate's CN to the MQTT user name, and its ACL lets a
  device read and write only under ``device_root(DEVICE_ID)``. The control plane's
  bridge connects with a certificate whose CN is ``BRIDGE_IDENTITY``.
* HTTPS with the same client certificate (mutual TLS) for bulk data: package
  assets and software images (``DEVICE_HTTP_*`` paths below), served by the control
  plane on its device endpoint. A revoked certificate (deleted device) gets 403 here
  and is refused by the broker bridge.
* The one-time exchange (token + CSR -> certificate) is plain HTTPS/HTTP POST to
  ``PROVISIONING_EXCHANGE`` on the API endpoint (the device has no certificate yet).

Topics (all JSON, UTF-8; QoS 1 unless said)
-------------------------------------------
``panoptes/v1/devices/{id}/desired``   cloud -> device, RETAINED: `DesiredState`.
``panoptes/v1/devices/{id}/report``    device -> cloud: one report (see REPORT_*).
``panoptes/v1/devices/{id}/presence``  device -> cloud, RETAINED: "online" on
                                       connect; the MQTT last will is "offline".
``panoptes/v1/devices/{id}/logs``      device -> cloud: `LogBatch`.

Desired state (the `desired` payload)
-------------------------------------
``DeviceView.desired_state`` plus ``Revision`` (increases with every change) and
``Packages``::

    {"DeviceId": "device-...", "Revision": 7,
     "ApplicationInstances": [
        {"ApplicationInstanceId": "applicationInstance-...",
         "Status": "DEPLOYMENT_PENDING", "Desired": "RUNNING" | "REMOVED",
         "Manifest": "<graph.json text>", "Overrides": "<overrides text>" | null,
         "Plan": {...plan_document...},
         "NodeSignals": {"node_instance_id": "RUNNING" | "PAUSED"},
         "Cameras": {"node_instance_id": {"StreamUrl", "Username", "Password"}},
         "RuntimeRoleArn": "..." | null,
         "Replaces": "applicationInstance-..." | null}],
     "Packages": [
        {"Account": "123456789012", "Name": "SAMPLE_CODE", "Version": "1.0",
         "PatchVersion": "<sha256>", "Manifest": {...package.json...},
         "Assets": [{"Name": "<file name in assets/>", "Sha256": "...", "Size": 123,
                     "Path": "/device/v1/assets/<bucket>/<key>"}]}],
     "Jobs": [{"JobId", "JobType": "OTA" | "REBOOT", "ImageVersion", "Status"}],
     "Software": {"Latest": "0.2.0",
                  "Images": {"0.2.0": {"Path": "/device/v1/software/0.2.0",
                                       "File": "panoptes-0.2.0-py3-none-any.whl",
                                       "Sha256": "...", "Size": 123}}}}

``Revision`` grows when the content changes; statuses alone (an instance's
``Status``, a job's ``Status``) do not make a new revision, so they are as of the
revision's publication. ``File`` is the wheel's file name (pip needs it); the
device endpoint also sends it as Content-Disposition.

Reports (the `report` payload, one JSON object with ``Type``)
-------------------------------------------------------------
``heartbeat``  {"Type", "Time", "CurrentSoftware", "SerialNumber",
                "NetworkStatus": {Ethernet0Status, ..., NtpStatus},
                "AlternateSoftwares": [...]}
``instance``   {"Type", "ApplicationInstanceId", "Status", "StatusDescription",
                "RuntimeStates": [...] | null}
``health``     {"Type", "ApplicationInstanceId", "HealthStatus",
                "Nodes": {"node_instance_id": "RUNNING" | "ERROR" | "NOT_AVAILABLE"
                          | "PAUSED"},
                "OutputUrl": "http://DEVICE-HOST:PORT/stream.mjpg" | null}
               OutputUrl: the instance's live output (MJPEG) as the control plane
               can reach it; the console relays it to browsers.
``job``        {"Type", "JobId", "Status": "IN_PROGRESS" | "DOWNLOADING" | "VERIFYING"
                | "REBOOTING" | "COMPLETED" | "FAILED", "Reason": "..." | null}
               (the DeviceJob state machine in cloud/services/states.py says which
               step may follow which)
``ack``        {"Type", "Revision"}  the device applied desired state ``Revision``.

A report the control plane cannot apply (unknown instance, invalid transition) is
logged and dropped: the device's next report carries the state again.

Log batches (the `logs` payload)
--------------------------------
``{"Group": "/aws/panorama/devices/ID[/applications/INSTANCE]", "Stream": "code_node",
   "Events": [{"timestamp": ms, "message": "..."}], "Sequence": n,
   "Dropped": k}``  ``Sequence`` increases per device so the control plane can drop
a batch it already stored (the agent re-sends after a reconnect); ``Dropped`` counts
events the agent's bounded offline buffer discarded (oldest first).
"""

from __future__ import annotations

import json
from typing import Any

VERSION = "v1"
TOPIC_ROOT = f"panoptes/{VERSION}/devices"

#: CN of the control plane's own MQTT client certificate.
BRIDGE_IDENTITY = "panoptes-control-plane"

#: HTTP route on the API endpoint: one-time token + CSR -> device certificate.
PROVISIONING_EXCHANGE = "/provisioning/exchange"

#: Mutual-TLS routes on the device endpoint.
DEVICE_HTTP_ASSETS = "/device/v1/assets"  # + "/{bucket}/{key}", Range supported
DEVICE_HTTP_SOFTWARE = "/device/v1/software"  # + "/{version}": a Panoptes wheel
DEVICE_HTTP_DESIRED = "/device/v1/desired"  # GET: the same DesiredState (fallback)
#: GET + "/{instance_id}": the instance's role credentials (container-credentials JSON:
#: AccessKeyId, SecretAccessKey, Token, Expiration); 404 when it has no RuntimeRoleArn.
DEVICE_HTTP_CREDENTIALS = "/device/v1/credentials"

DESIRED, REPORT, PRESENCE, LOGS = "desired", "report", "presence", "logs"
ONLINE, OFFLINE = "online", "offline"

REPORT_HEARTBEAT = "heartbeat"
REPORT_INSTANCE = "instance"
REPORT_HEALTH = "health"
REPORT_JOB = "job"
REPORT_ACK = "ack"

#: How often an agent heartbeats, and how long the control plane waits before it
#: calls a silent device NOT_AVAILABLE (besides the broker's last will).
HEARTBEAT_SECONDS = 10.0
LEASE_SECONDS = 3 * HEARTBEAT_SECONDS


def device_root(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}"


def topic(device_id: str, kind: str) -> str:
    """``topic("device-1", DESIRED)`` -> ``panoptes/v1/devices/device-1/desired``."""
    return f"{device_root(device_id)}/{kind}"


def parse_topic(name: str) -> tuple[str, str] | None:
    """``panoptes/v1/devices/ID/KIND`` -> (ID, KIND); anything else -> None."""
    prefix = TOPIC_ROOT + "/"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :].split("/")
    if len(rest) != 2 or not rest[0] or rest[1] not in (DESIRED, REPORT, PRESENCE, LOGS):
        return None
    return rest[0], rest[1]


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def decode(payload: bytes) -> dict[str, Any]:
    """A JSON object, or ValueError naming what is wrong."""
    value = json.loads(payload.decode())
    if not isinstance(value, dict):
        raise ValueError("a link message must be a JSON object")
    return value


def device_log_group(device_id: str) -> str:
    return f"/aws/panorama/devices/{device_id}"


def instance_log_group(device_id: str, instance_id: str) -> str:
    return f"/aws/panorama/devices/{device_id}/applications/{instance_id}"
