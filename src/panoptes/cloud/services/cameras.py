"""Cameras: CreateNodeFromTemplateJob (RTSP_CAMERA_STREAM) and its job listing.

A camera becomes a node package of the caller's account: package
``OutputPackageName`` at ``OutputPackageVersion`` with one media_source interface
named ``NodeName`` (the guide's overrides name it ``ACCOUNT::NAME.NAME``). Its
package.json holds no secret: the stream URL and password are encrypted in
camera_sources, and every API answer masks them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select

from panoptes.cloud.db.models import CameraSource, NodeFromTemplateJob
from panoptes.cloud.errors import Conflict, ServiceError
from panoptes.cloud.services import states
from panoptes.cloud.services.common import (
    Call,
    get_owned,
    invalid,
    newest_first,
    set_tags,
    sha256_hex,
)
from panoptes.cloud.services.packages import (
    add_version,
    create_package_row,
    find_version,
    manifest_key,
    package_by_name,
)

MASK = "********"
RTSP_KEYS = {"Username", "Password", "StreamUrl"}


def camera_purpose(package_version_id: int, what: str) -> str:
    return f"camera:{package_version_id}:{what}"


def redact_url(url: str) -> str:
    """The URL without a password in its userinfo (rtsp://user:pw@host → rtsp://user@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host}"))


def _check_parameters(params: dict[str, str]) -> None:
    unknown = sorted(set(params) - RTSP_KEYS)
    if unknown:
        raise invalid(
            "TemplateParameters",
            f"unknown parameter(s) {', '.join(unknown)}; RTSP_CAMERA_STREAM takes "
            "Username, Password and StreamUrl",
        )
    url = params.get("StreamUrl")
    if not url:
        raise invalid("TemplateParameters.StreamUrl", "required: the camera's RTSP URL")
    parts = urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise invalid("TemplateParameters.StreamUrl", "must be an rtsp:// or rtsps:// URL")
    if "Password" in params and "Username" not in params:
        raise invalid("TemplateParameters.Username", "required when a Password is given")


def camera_package_doc(name: str, version: str, node: str, description: str | None) -> dict:
    return {
        "nodePackage": {
            "envelopeVersion": "2021-01-01",
            "name": name,
            "version": version,
            "description": description or f"Camera stream {node}",
            "assets": [],
            "interfaces": [
                {
                    "name": node,
                    "category": "media_source",
                    "description": description or f"Camera stream {node}",
                    "outputs": [{"name": "video_out", "type": "media"}],
                }
            ],
        }
    }


def create_node_from_template_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    params = dict(p["TemplateParameters"])
    _check_parameters(params)
    name, version = p["OutputPackageName"], p["OutputPackageVersion"]
    existing = package_by_name(call, name)
    if existing is not None and find_version(call, existing, version, None) is not None:
        raise Conflict(f"package {name} {version} exists already", existing.id, "package")
    masked = {k: MASK if k == "Password" else v for k, v in params.items()}
    masked["StreamUrl"] = redact_url(params["StreamUrl"])
    job = NodeFromTemplateJob(
        id=str(uuid.uuid4()),
        account_id=call.account,
        template_type=p["TemplateType"],
        output_package_name=name,
        output_package_version=version,
        node_name=p["NodeName"],
        node_description=p.get("NodeDescription"),
        template_parameters=masked,
        job_tags=p.get("JobTags"),
        status="PENDING",
        status_message="",
        created=call.now,
        updated=call.now,
    )
    call.session.add(job)
    call.session.flush()
    try:
        # A savepoint: a failure (a quota) undoes the package but keeps the FAILED job.
        with call.session.begin_nested():
            _make_camera_package(call, p, params)
        job.status = states.NODE_FROM_TEMPLATE_JOB.next(job.status, "succeeded", job.id)
        job.status_message = f"Created node {p['NodeName']} in package {name} {version}."
    except ServiceError as exc:
        job.status = states.NODE_FROM_TEMPLATE_JOB.next(job.status, "failed", job.id)
        job.status_message = exc.message
    job.updated = call.now
    return {"JobId": job.id}


def _make_camera_package(call: Call, p: dict[str, Any], params: dict[str, str]) -> None:
    name, version = p["OutputPackageName"], p["OutputPackageVersion"]
    package = package_by_name(call, name)
    if package is None:
        package = create_package_row(call, name, None)
    for tags in p.get("JobTags") or []:
        if tags.get("ResourceType") == "PACKAGE":
            set_tags(call, call.arn("package", package.id), tags.get("Tags"))
    doc = camera_package_doc(name, version, p["NodeName"], p.get("NodeDescription"))
    raw = json.dumps(doc, indent=2).encode()
    patch = sha256_hex(raw)
    call.env.store.put(package.bucket, manifest_key(package, version, patch), raw)
    row = add_version(call, package, version, patch, doc, mark_latest=True)
    secrets = call.env.secrets
    call.session.add(
        CameraSource(
            package_version_id=row.id,
            stream_url_encrypted=secrets.encrypt(
                params["StreamUrl"], camera_purpose(row.id, "url")
            ),
            username=params.get("Username"),
            password_encrypted=(
                secrets.encrypt(params["Password"], camera_purpose(row.id, "password"))
                if "Password" in params
                else None
            ),
        )
    )
    call.session.flush()


def describe_node_from_template_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    job = get_owned(call, NodeFromTemplateJob, p["JobId"], "nodeFromTemplateJob")
    out = {
        "CreatedTime": job.created,
        "JobId": job.id,
        "LastUpdatedTime": job.updated,
        "NodeName": job.node_name,
        "OutputPackageName": job.output_package_name,
        "OutputPackageVersion": job.output_package_version,
        "Status": job.status,
        "StatusMessage": job.status_message,
        "TemplateParameters": dict(job.template_parameters),
        "TemplateType": job.template_type,
    }
    if job.job_tags:
        out["JobTags"] = job.job_tags
    if job.node_description is not None:
        out["NodeDescription"] = job.node_description
    return out


def list_node_from_template_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    rows = call.session.scalars(
        select(NodeFromTemplateJob).where(NodeFromTemplateJob.account_id == call.account)
    ).all()
    return newest_first(
        rows,
        p,
        "ListNodeFromTemplateJobs",
        "NodeFromTemplateJobs",
        lambda j: {
            "CreatedTime": j.created,
            "JobId": j.id,
            "NodeName": j.node_name,
            "Status": j.status,
            "StatusMessage": j.status_message,
            "TemplateType": j.template_type,
        },
    )


def camera_stream(env: Any, account: str, package_name: str, version: str) -> dict[str, Any] | None:
    """A registered camera's stream, decrypted, for the control plane's own use only.

    The console's snapshot thumbnail opens the stream with it; no API operation ever
    returns it. None when ACCOUNT has no such camera package version.
    """
    from panoptes.cloud.db.models import Package, PackageVersion

    with env.db.reading() as session:
        row = session.execute(
            select(CameraSource, PackageVersion.id)
            .join(PackageVersion, CameraSource.package_version_id == PackageVersion.id)
            .join(Package, PackageVersion.package_id == Package.id)
            .where(
                Package.account_id == account,
                Package.name == package_name,
                PackageVersion.version == version,
            )
            .order_by(PackageVersion.id.desc())
        ).first()
    if row is None:
        return None
    return decrypted_stream(env.secrets, row[0])


def decrypted_stream(secrets: Any, source: CameraSource) -> dict[str, str | None]:
    """StreamUrl, Username and Password of a camera, decrypted (never for an API answer:
    for the device it runs on, and the console's thumbnail)."""
    vid = source.package_version_id
    return {
        "StreamUrl": secrets.decrypt(source.stream_url_encrypted, camera_purpose(vid, "url")),
        "Username": source.username,
        "Password": (
            secrets.decrypt(source.password_encrypted, camera_purpose(vid, "password"))
            if source.password_encrypted
            else None
        ),
    }
