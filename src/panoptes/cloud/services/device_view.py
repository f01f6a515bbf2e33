"""The device agent's side of the control plane: what to run, and what happened.

`DeviceView.desired_state(device_id)` is what the device should run: the
`panoptes.link` DesiredState (application instances with manifests and resolved
plans, node signals, camera credentials decrypted for the device only, the
packages with their assets, pending jobs, the software images). `publishable_state`
adds the ``Revision``, which grows whenever the content changes (statuses aside).
The `report_*`, `heartbeat`, `presence` and `acknowledge` methods record what the
device says happened; every status change goes through the tables in states.py.
The channel (MQTT, device endpoint) calls these; they know no HTTP either.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from panoptes.cloud.db.models import (
    ApplicationInstance,
    CameraSource,
    Device,
    DeviceJob,
    Package,
    PackageVersion,
)
from panoptes.cloud.errors import AccessDenied, ResourceNotFound
from panoptes.cloud.services import provisioning, software, states
from panoptes.cloud.services.applications import STATUS_DESCRIPTIONS, set_status
from panoptes.cloud.services.backend import Services
from panoptes.cloud.services.cameras import decrypted_stream
from panoptes.cloud.services.packages import storage_location
from panoptes.link import DEVICE_HTTP_ASSETS, LEASE_SECONDS, OFFLINE, ONLINE

#: Instances the device must act on (deploy or remove); the rest is history.
_LIVE = tuple(s for s in states.APPLICATION_INSTANCE.states if s != "REMOVAL_SUCCEEDED")
_REMOVING = ("REMOVAL_PENDING", "REMOVAL_REQUESTED", "REMOVAL_IN_PROGRESS", "REMOVAL_FAILED")
#: Waiting for the channel to deliver them (mark_published on the device's ack).
_PENDING = ("DEPLOYMENT_PENDING", "REMOVAL_PENDING")
#: Devices that hold a certificate: the link publishes their desired state.
LINKED_STATUSES = ("PENDING", "SUCCEEDED", "ERROR")


def content_digest(state: dict[str, Any]) -> str:
    """SHA-256 of a desired state without its statuses, revision and secrets.

    Statuses change with every device report; they are news for the API, not work
    for the device, so they alone never make a new revision. Camera URLs and
    passwords stay out of the stored digest (a hash of a password is a secret too);
    nothing is lost: a camera package version's credentials never change, and the
    plan names the exact patch.
    """
    stripped = {k: v for k, v in state.items() if k != "Revision"}
    stripped["ApplicationInstances"] = [
        {
            **{k: v for k, v in app.items() if k != "Status"},
            "Cameras": {
                node: {"Username": cam.get("Username")}
                for node, cam in (app.get("Cameras") or {}).items()
            },
        }
        for app in state.get("ApplicationInstances", [])
    ]
    stripped["Jobs"] = [
        {k: v for k, v in job.items() if k != "Status"} for job in state.get("Jobs", [])
    ]
    raw = json.dumps(stripped, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class DeviceView:
    def __init__(self, env: Services) -> None:
        self.env = env

    # -- reading ---------------------------------------------------------------------

    def desired_state(self, device_id: str) -> dict[str, Any]:
        """What the device should run (`panoptes.link` DesiredState without Revision)."""
        with self.env.db.reading() as session:
            return self._desired(session, _device(session, device_id))

    def publishable_state(self, device_id: str) -> dict[str, Any]:
        """The desired state with its ``Revision``: bumped when the content changed."""
        with self.env.db.transaction() as session:
            device = _device(session, device_id, lock=True)
            state = self._desired(session, device)
            digest = content_digest(state)
            if digest != device.desired_digest:
                device.desired_revision = (device.desired_revision or 0) + 1
                device.desired_digest = digest
            return {**state, "Revision": device.desired_revision}

    def linked_devices(self) -> list[str]:
        """Devices holding a certificate: the ones whose desired state is published."""
        with self.env.db.reading() as session:
            return list(
                session.scalars(
                    select(Device.id).where(Device.provisioning_status.in_(LINKED_STATUSES))
                )
            )

    def _desired(self, session: Session, device: Device) -> dict[str, Any]:
        rows = session.scalars(
            select(ApplicationInstance)
            .where(
                ApplicationInstance.device_id == device.id,
                ApplicationInstance.status.in_(_LIVE),
            )
            .order_by(ApplicationInstance.created, ApplicationInstance.id)
        ).all()
        apps = [self._instance(session, device, row) for row in rows]
        jobs = session.scalars(
            select(DeviceJob)
            .where(
                DeviceJob.device_id == device.id,
                DeviceJob.status.not_in(states.FINISHED_JOB_STATUSES),
            )
            .order_by(DeviceJob.created)
        ).all()
        ota_versions = [j.image_version for j in jobs if j.image_version]
        return {
            "DeviceId": device.id,
            "ApplicationInstances": apps,
            "Packages": self._packages(session, rows),
            "Jobs": [
                {
                    "JobId": j.id,
                    "JobType": j.job_type,
                    "ImageVersion": j.image_version,
                    "Status": j.status,
                }
                for j in jobs
            ],
            "Software": software.software_block(
                self.env.store, self.env.settings.latest_software, ota_versions
            ),
        }

    def _packages(self, session: Session, rows: Any) -> list[dict[str, Any]]:
        """Every registered package the live instances name, with its asset files."""
        seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for row in rows:
            for ref in row.plan.get("packages", []):
                if not ref or ref["account"] != row.account_id:
                    continue  # Panorama's built-in packages ship with the device
                key = (ref["account"], ref["name"], ref["version"], ref["patchVersion"])
                if key in seen:
                    continue
                found = session.execute(
                    select(Package, PackageVersion)
                    .join(PackageVersion, PackageVersion.package_id == Package.id)
                    .where(
                        Package.account_id == ref["account"],
                        Package.name == ref["name"],
                        PackageVersion.version == ref["version"],
                        PackageVersion.patch_version == ref["patchVersion"],
                    )
                ).first()
                if found is None:
                    continue  # deregistered since: the device keeps what it has
                package, version = found
                seen[key] = {
                    "Account": package.account_id,
                    "Name": package.name,
                    "Version": version.version,
                    "PatchVersion": version.patch_version,
                    "Manifest": version.manifest,
                    "Assets": self._assets(package, version.manifest),
                }
        return list(seen.values())

    def _assets(self, package: Package, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        binaries = storage_location(package)["BinaryPrefixLocation"]
        out: dict[str, dict[str, Any]] = {}
        for asset in manifest.get("nodePackage", {}).get("assets", []):
            for impl in asset.get("implementations", []):
                if impl.get("type") == "system":
                    continue  # built into the device: nothing to download
                for field in ("assetUri", "descriptorUri"):
                    name = impl.get(field)
                    if not name or name in out:
                        continue
                    key = f"{binaries}/{name}"
                    info = self.env.store.head(package.bucket, key)
                    if info is None:
                        continue  # registration checked it; gone means deleted since
                    out[name] = {
                        "Name": name,
                        "Sha256": info.sha256,
                        "Size": info.size,
                        "Path": f"{DEVICE_HTTP_ASSETS}/{package.bucket}/{key}",
                    }
        return list(out.values())

    def _instance(self, session: Session, device: Device, row: ApplicationInstance) -> dict:
        cameras = {}
        for node in row.node_instances:
            if node.is_camera and node.package_name:
                source = _camera_source(session, device.account_id, node)
                if source is not None:
                    cameras[node.node_instance_id] = decrypted_stream(self.env.secrets, source)
        return {
            "ApplicationInstanceId": row.id,
            "Status": row.status,
            "Desired": "REMOVED" if row.status in _REMOVING else "RUNNING",
            "Manifest": row.manifest_payload,
            "Overrides": row.overrides_payload,
            "Plan": row.plan,
            "NodeSignals": {n.node_instance_id: n.desired_state for n in row.node_instances},
            "Cameras": cameras,
            "RuntimeRoleArn": row.runtime_role_arn,
            "Replaces": row.replaces_id,
        }

    # -- provisioning ----------------------------------------------------------------

    def exchange_provisioning_credential(
        self, token: str, csr_pem: str | bytes, now: datetime | None = None
    ) -> str:
        """The certificates archive's one-time token + the device's CSR → its cert (PEM)."""
        now = now or datetime.now(UTC)
        with self.env.db.transaction() as session:
            return provisioning.exchange_provisioning_credential(
                session,
                self.env.ca(now),
                token,
                csr_pem,
                now,
                self.env.settings.device_certificate_days,
            )

    def device_of_certificate(
        self, cert_pem: str | bytes, now: datetime | None = None
    ) -> str | None:
        now = now or datetime.now(UTC)
        with self.env.db.session() as session:
            return provisioning.device_of_certificate(session, self.env.ca(now), cert_pem, now)

    # -- reports ---------------------------------------------------------------------

    def mark_published(self, instance_id: str, now: datetime) -> str:
        """The channel delivered the desired state: PENDING becomes REQUESTED."""
        with self.env.db.transaction() as session:
            row = _instance(session, None, instance_id)
            set_status(row, "published", now)
            return row.status

    def report_instance_status(
        self,
        device_id: str,
        instance_id: str,
        status: str,
        now: datetime,
        description: str | None = None,
        runtime_states: list[dict[str, Any]] | None = None,
    ) -> str:
        """The device reached ``status`` (an ApplicationInstanceStatus) for the instance."""
        with self.env.db.transaction() as session:
            row = _instance(session, device_id, instance_id)
            if status == row.status:
                # A restarted agent reports again what it runs: nothing moves.
                _record_runtime_states(row, runtime_states, now)
                return row.status
            event = states.APPLICATION_INSTANCE.event_to(row.status, status)
            if event is None or event in ("remove", "rejected"):
                raise states.InvalidTransition(
                    "applicationInstance", row.status, f"report {status}", row.id
                )
            set_status(row, event, now, description or STATUS_DESCRIPTIONS[status])
            _record_runtime_states(row, runtime_states, now)
            if status == "DEPLOYMENT_SUCCEEDED" and row.replaces_id:
                old = session.get(ApplicationInstance, row.replaces_id)
                if old is not None and states.APPLICATION_INSTANCE.can(old.status, "remove"):
                    set_status(old, "remove", now, f"Replaced by {row.id}.")
            if status == "REMOVAL_SUCCEEDED":
                row.health_status = "NOT_AVAILABLE"
                row.output_url = None
                for node in row.node_instances:
                    node.current_status = "NOT_AVAILABLE"
            return row.status

    def report_health(
        self,
        device_id: str,
        instance_id: str,
        health: str,
        now: datetime,
        nodes: dict[str, str] | None = None,
        output_url: str | None = None,
    ) -> None:
        """HealthStatus (RUNNING/ERROR/NOT_AVAILABLE), per-node NodeInstanceStatus and the
        live output URL (None: it has none now)."""
        if output_url is not None and not output_url.startswith("http://"):
            raise ValueError(f"OutputUrl {output_url[:100]!r}: an http:// MJPEG URL or null")
        with self.env.db.transaction() as session:
            row = _instance(session, device_id, instance_id)
            row.health_status = health
            row.output_url = output_url[:1024] if output_url else None
            for node in row.node_instances:
                if nodes and node.node_instance_id in nodes:
                    node.current_status = nodes[node.node_instance_id]
            row.updated = now

    def output_url(self, account_id: str, instance_id: str) -> str | None:
        """The live output URL the device last reported for the account's instance."""
        with self.env.db.reading() as session:
            row = session.get(ApplicationInstance, instance_id)
            if row is None or row.account_id != account_id:
                return None
            return row.output_url

    def heartbeat(
        self,
        device_id: str,
        now: datetime,
        *,
        current_software: str | None = None,
        serial_number: str | None = None,
        network_status: dict[str, Any] | None = None,
        alternate_softwares: list[str] | None = None,
    ) -> str:
        """The device is alive; its first heartbeat completes provisioning."""
        with self.env.db.transaction() as session:
            device = _device(session, device_id)
            if states.DEVICE.can(device.provisioning_status, "connected"):
                device.provisioning_status = states.DEVICE.next(
                    device.provisioning_status, "connected", device.id
                )
            device.last_heartbeat = now
            # Server time: a device's clock may be wrong; the lease is ours.
            device.lease_expiration = now + timedelta(seconds=LEASE_SECONDS)
            device.presence, device.presence_time = ONLINE, now
            if current_software is not None:
                device.current_software = current_software
            if serial_number is not None:
                device.serial_number = serial_number
            if network_status is not None:
                device.network_status = network_status
                device.network_status_time = now
            if alternate_softwares is not None:
                device.alternate_softwares = alternate_softwares
            device.updated = now
            return device.provisioning_status

    def presence(self, device_id: str, online: bool, now: datetime) -> None:
        """The device's presence message: "online" on connect, its last will "offline"."""
        with self.env.db.transaction() as session:
            device = _device(session, device_id)
            device.presence, device.presence_time = (ONLINE if online else OFFLINE), now

    def acknowledge(self, device_id: str, revision: int, now: datetime) -> list[str]:
        """The device applied desired state ``revision``: its PENDING instances were
        delivered (-> REQUESTED). Only when ``revision`` is the latest AND the content
        has not changed since it was published (an instance created a moment later is
        not in it): otherwise the ack of the newer revision follows."""
        with self.env.db.transaction() as session:
            device = _device(session, device_id, lock=True)
            if revision != device.desired_revision:
                return []
            if content_digest(self._desired(session, device)) != device.desired_digest:
                return []
            rows = session.scalars(
                select(ApplicationInstance).where(
                    ApplicationInstance.device_id == device_id,
                    ApplicationInstance.status.in_(_PENDING),
                )
            ).all()
            for row in rows:
                set_status(row, "published", now)
            return [row.id for row in rows]

    def report_job_status(self, device_id: str, job_id: str, status: str, now: datetime) -> str:
        with self.env.db.transaction() as session:
            job = session.get(DeviceJob, job_id)
            if job is None or job.device_id != device_id:
                raise ResourceNotFound(job_id, "job")
            event = states.DEVICE_JOB.event_to(job.status, status)
            if event is None:
                raise states.InvalidTransition("deviceJob", job.status, f"report {status}", job.id)
            job.status = states.DEVICE_JOB.next(job.status, event, job.id)
            job.updated = now
            if status == "COMPLETED" and job.job_type == "OTA" and job.image_version:
                job.device.current_software = job.image_version
            return job.status


def _record_runtime_states(
    row: ApplicationInstance, runtime_states: list[dict[str, Any]] | None, now: datetime
) -> None:
    if runtime_states is not None:
        row.runtime_context_states = [
            {**s, "DeviceReportedTime": now.isoformat()} for s in runtime_states
        ]


def _device(session: Session, device_id: str, *, lock: bool = False) -> Device:
    """The device row, or ResourceNotFound; ``lock``: held (FOR UPDATE) until the
    transaction ends, so two workers do not publish or acknowledge the same revision."""
    if lock:
        query = select(Device).where(Device.id == device_id).with_for_update()
        device = session.scalars(query).first()
    else:
        device = session.get(Device, device_id)
    if device is None:
        raise ResourceNotFound(device_id, "device")
    return device


def _instance(session: Session, device_id: str | None, instance_id: str) -> ApplicationInstance:
    row = session.get(ApplicationInstance, instance_id)
    if row is None:
        raise ResourceNotFound(instance_id, "applicationInstance")
    if device_id is not None and row.device_id != device_id:
        raise AccessDenied(f"{instance_id} does not run on device {device_id}")
    return row


def _camera_source(session: Session, account: str, node: Any) -> CameraSource | None:
    return session.scalars(
        select(CameraSource)
        .join(PackageVersion, CameraSource.package_version_id == PackageVersion.id)
        .join(Package, PackageVersion.package_id == Package.id)
        .where(
            Package.account_id == account,
            Package.name == node.package_name,
            PackageVersion.version == node.package_version,
            PackageVersion.patch_version == node.patch_version,
        )
    ).first()
