"""Package import jobs: register a package version from a package.json in the store.

NODE_PACKAGE_VERSION reads the manifest at InputConfig's S3Location; the asset files
it names are taken from the package's binaries prefix, or else from beside the
manifest (``DIR/NAME`` or ``DIR/assets/NAME``) and copied there. The version is
then checked and registered exactly as RegisterPackageVersion does. ClientToken
makes the call idempotent: the same token and request give the same job.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from typing import Any

from sqlalchemy import select

from panoptes.cloud.db.models import PackageImportJob
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
    read_manifest,
    storage_location,
)


def create_package_import_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    token = p["ClientToken"]
    request = {
        "JobType": p["JobType"],
        "InputConfig": p["InputConfig"],
        "OutputConfig": p["OutputConfig"],
    }
    earlier = call.session.scalars(
        select(PackageImportJob).where(
            PackageImportJob.account_id == call.account, PackageImportJob.client_token == token
        )
    ).first()
    if earlier is not None:
        same = (earlier.job_type, earlier.input_config, earlier.output_config) == (
            request["JobType"],
            request["InputConfig"],
            request["OutputConfig"],
        )
        if not same:
            raise Conflict(
                f"ClientToken {token} was used for another import", earlier.id, "packageImportJob"
            )
        return {"JobId": earlier.id}
    inp = p["InputConfig"].get("PackageVersionInputConfig")
    out = p["OutputConfig"].get("PackageVersionOutputConfig")
    if inp is None:
        raise invalid("InputConfig.PackageVersionInputConfig", "required")
    if out is None:
        raise invalid("OutputConfig.PackageVersionOutputConfig", "required")
    job = PackageImportJob(
        id=str(uuid.uuid4()),
        account_id=call.account,
        client_token=token,
        job_type=p["JobType"],
        input_config=p["InputConfig"],
        output_config=p["OutputConfig"],
        job_tags=p.get("JobTags"),
        status="PENDING",
        status_message="",
        created=call.now,
        updated=call.now,
    )
    call.session.add(job)
    call.session.flush()
    try:
        if p["JobType"] != "NODE_PACKAGE_VERSION":
            raise invalid("JobType", "Panoptes imports NODE_PACKAGE_VERSION jobs only")
        with call.session.begin_nested():
            job.output = _import(call, inp["S3Location"], out, p.get("JobTags"))
        job.status = states.PACKAGE_IMPORT_JOB.next(job.status, "succeeded", job.id)
        job.status_message = "Package version imported."
    except ServiceError as exc:
        job.status = states.PACKAGE_IMPORT_JOB.next(job.status, "failed", job.id)
        job.status_message = exc.message
    job.updated = call.now
    return {"JobId": job.id}


def _import(
    call: Call, src: dict[str, str], out: dict[str, Any], tags: list[dict] | None
) -> dict[str, Any]:
    store = call.env.store
    bucket, key = src["BucketName"], src["ObjectKey"]
    if store.head(bucket, key) is None:
        raise invalid("InputConfig.PackageVersionInputConfig.S3Location", f"no s3://{bucket}/{key}")
    with store.open(bucket, key) as f:
        raw = f.read()
    try:
        doc = json.loads(raw)
    except ValueError:
        raise invalid("InputConfig", f"s3://{bucket}/{key} is not JSON") from None
    name, version = out["PackageName"], out["PackageVersion"]
    package = package_by_name(call, name) or create_package_row(call, name, None)
    for t in tags or []:
        if t.get("ResourceType") == "PACKAGE":
            set_tags(call, call.arn("package", package.id), t.get("Tags"))
    patch = sha256_hex(raw)
    if find_version(call, package, version, patch) is not None:
        raise Conflict(f"{name} {version} patch {patch} is registered already", package.id)
    binaries = storage_location(package)["BinaryPrefixLocation"]
    folder = posixpath.dirname(key)
    for asset in (doc.get("nodePackage") or {}).get("assets") or []:
        for impl in asset.get("implementations") or []:
            for field in ("assetUri", "descriptorUri"):
                uri = impl.get(field)
                if not uri or store.head(package.bucket, f"{binaries}/{uri}") is not None:
                    continue
                for candidate in (
                    posixpath.join(folder, uri),
                    posixpath.join(folder, "assets", uri),
                ):
                    if store.head(bucket, candidate) is not None:
                        with store.open(bucket, candidate) as f:
                            store.put(package.bucket, f"{binaries}/{uri}", f.read())
                        break
    target = manifest_key(package, version, patch)
    store.put(package.bucket, target, raw)
    checked = read_manifest(call, package, version, patch)
    add_version(call, package, version, patch, checked, bool(out.get("MarkLatest")))
    return {
        "OutputS3Location": {"BucketName": package.bucket, "ObjectKey": target},
        "PackageId": package.id,
        "PackageVersion": version,
        "PatchVersion": patch,
    }


def get_import_job(call: Call, job_id: str) -> PackageImportJob:
    return get_owned(call, PackageImportJob, job_id, "packageImportJob")


def describe_package_import_job(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    job = get_import_job(call, p["JobId"])
    result = {
        "ClientToken": job.client_token,
        "CreatedTime": job.created,
        "InputConfig": job.input_config,
        "JobId": job.id,
        "JobType": job.job_type,
        "LastUpdatedTime": job.updated,
        "Output": job.output or {},
        "OutputConfig": job.output_config,
        "Status": job.status,
        "StatusMessage": job.status_message,
    }
    if job.job_tags:
        result["JobTags"] = job.job_tags
    return result


def list_package_import_jobs(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    rows = call.session.scalars(
        select(PackageImportJob).where(PackageImportJob.account_id == call.account)
    ).all()
    return newest_first(
        rows,
        p,
        "ListPackageImportJobs",
        "PackageImportJobs",
        lambda j: {
            "CreatedTime": j.created,
            "JobId": j.id,
            "JobType": j.job_type,
            "LastUpdatedTime": j.updated,
            "Status": j.status,
            "StatusMessage": j.status_message,
        },
    )
