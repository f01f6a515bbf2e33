"""`panoptes app package-application`: upload a project's packages and register them.

panorama-cli's flow, one package folder at a time: find the package by name (create it
when the service has none), take the SHA-256 of package.json as the patch version,
skip the package when that patch is already its latest, upload the asset files the
manifest names (unless the bucket has them) and the manifest itself, register the
patch as latest, wait until the service says REGISTER_COMPLETED and deregister the
patch it replaces.

Unlike the rest of panoptes.project this module talks to a service: the Panorama API
and its S3 store, through boto3 clients that ``connect`` builds (or a caller passes).
What differs from panorama-cli: any API error other than "not found" stops the run
(it treated every error as "package missing"); every local asset file is checked
before anything is uploaded; waiting has a timeout; a failure names the asset and
the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from panoptes.cloud.client_env import SetupError, service_access
from panoptes.cloud.protocol.models import data_path
from panoptes.project.assets import package_manifest, package_ref
from panoptes.project.errors import ProjectError
from panoptes.project.layout import Project, default_account
from panoptes.project.progress import NO_PROGRESS, Progress
from panoptes.settings import DEFAULT_REGION, default_data_dir
from panoptes.spec import folder_ref

Say = Callable[[str], None]

#: Default bound on waiting for REGISTER_COMPLETED (panorama-cli waited forever).
WAIT_TIMEOUT = 600.0


@dataclass
class Clients:
    """The two clients package-application needs, and where they point."""

    panorama: Any
    s3: Any
    endpoint: str
    start_hint: str  # how to get a service answering at ``endpoint``


@dataclass
class LocalPackage:
    """One package folder, read and checked before any network call."""

    folder: Path
    name: str
    version: str
    manifest_bytes: bytes
    patch: str
    uploads: list[str]  # asset file names in assets/ (assetUri, descriptorUri)


@dataclass
class PackagedApp:
    registered: list[tuple[str, str, str]] = field(default_factory=list)  # name, version, patch
    unchanged: list[str] = field(default_factory=list)
    deregistered: list[tuple[str, str]] = field(default_factory=list)  # name, patch
    notes: list[str] = field(default_factory=list)


# ---- clients -------------------------------------------------------------------------


def connect(
    data_dir: Path | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> Clients:
    """Panorama + S3 clients with Panoptes' Panorama model on the botocore data path.

    With neither ``endpoint_url`` nor ``profile``: the service running from ``data_dir``
    (its service.json and admin credentials). Otherwise standard AWS resolution
    (environment, ``--profile``, its ``endpoint_url``), with ``endpoint_url`` winning.
    """
    # Services throttle writes per account (Panoptes: 1 a second); back off and retry.
    config = Config(
        s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 10}
    )
    try:
        core = botocore.session.Session(profile=profile)
        # The installed botocore may not know Panorama at all (gone since 1.43.38).
        core.get_component("data_loader").search_paths.insert(0, str(data_path()))
        if endpoint_url is None and profile is None:
            folder = (data_dir or default_data_dir()).expanduser()
            try:
                access = service_access(folder)
            except SetupError as e:
                raise ProjectError(e.message, e.hint) from None
            session = boto3.Session(
                botocore_session=core,
                aws_access_key_id=access.access_key_id,
                aws_secret_access_key=access.secret_access_key,
                region_name=region or access.region,
            )
            endpoint = access.endpoint_url
            hint = f"start it: panoptes serve --data-dir {folder}"
        else:
            session = boto3.Session(botocore_session=core)
            region = region or session.region_name or DEFAULT_REGION
            endpoint = endpoint_url  # None: the profile's endpoint_url, else AWS
            hint = "check --endpoint-url / the profile's endpoint_url and that the service runs"
        kwargs: dict[str, Any] = {"region_name": region or session.region_name, "config": config}
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        panorama = session.client("panorama", **kwargs)
        s3 = session.client("s3", **kwargs)
    except ProfileNotFound as e:
        raise ProjectError(str(e), "use a profile from ~/.aws/config, or --data-dir") from None
    except BotoCoreError as e:
        raise ProjectError(f"cannot set up AWS clients: {e}", "check --profile/--region") from None
    clients = Clients(panorama, s3, panorama.meta.endpoint_url, hint)
    if endpoint_url is not None or profile is not None:
        _probe(session, kwargs, clients)
    return clients


def _probe(session: Any, kwargs: dict[str, Any], clients: Clients) -> None:
    """Fail fast on an endpoint nobody answers (retrying would take half a minute)."""
    once = Config(retries={"mode": "standard", "max_attempts": 1})
    probe = session.client("panorama", **(kwargs | {"config": kwargs["config"].merge(once)}))
    try:
        probe.list_packages(MaxResults=1)
    except EndpointConnectionError as e:
        raise _api_error(e, "connecting", clients) from None
    except (ClientError, BotoCoreError):
        pass  # it answers; the real calls report (and retry) anything else


# ---- reading the project -------------------------------------------------------------


def _system(impl: dict[str, Any]) -> bool:
    return impl.get("type") == "system"


def read_package(project: Project, folder: Path) -> LocalPackage:
    """package.json bytes, its patch version and the asset files it names, all checked."""
    path, manifest = package_manifest(folder)
    raw = path.read_bytes()
    ref = package_ref(folder, manifest, default_account())
    uploads: list[str] = []
    for asset in manifest["nodePackage"]["assets"]:
        if not isinstance(asset, dict):
            continue
        for impl in asset.get("implementations") or []:
            if not isinstance(impl, dict) or _system(impl):
                continue  # built into the device: nothing to upload
            for key in ("assetUri", "descriptorUri"):
                uri = impl.get(key)
                if isinstance(uri, str) and uri and uri not in uploads:
                    uploads.append(uri)
    for uri in uploads:
        if not (project.assets_dir / uri).is_file():
            raise ProjectError(
                f"{project.rel(path)} names asset {uri}, but assets/{uri} does not exist",
                "rebuild the asset (panoptes app build-container / add-raw-model) or fix "
                "the assetUri/descriptorUri in package.json",
            )
    return LocalPackage(
        folder, ref.name, ref.version, raw, hashlib.sha256(raw).hexdigest(), uploads
    )


def package_folders(project: Project, paths: list[Path], say: Say) -> list[Path]:
    if paths:
        folders = [p if p.is_absolute() else Path.cwd() / p for p in paths]
        for p in folders:
            if not (p / "package.json").is_file():
                raise ProjectError(
                    f"{p}: no package.json in this folder", "pass packages/ACCOUNT-NAME-VERSION"
                )
        return [p.resolve() for p in folders]
    found = []
    for p in project.package_folders():
        if p.name.startswith("."):
            continue  # a create-package staging folder
        if folder_ref(p) is None or not (p / "package.json").is_file():
            say(f"{project.rel(p)} is not a package, ignoring")
            continue
        found.append(p)
    return found


# ---- API helpers ---------------------------------------------------------------------


def _code(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", "")


def _api_error(e: Exception, doing: str, clients: Clients) -> ProjectError:
    """A ClientError / connection error as a ProjectError with a fix."""

    if isinstance(e, EndpointConnectionError):
        return ProjectError(f"{doing}: cannot reach {clients.endpoint}", clients.start_hint)
    if isinstance(e, NoCredentialsError):
        return ProjectError(
            f"{doing}: no AWS credentials found",
            "pass --profile NAME, or omit --endpoint-url/--profile to use the local service",
        )
    if isinstance(e, NoRegionError):
        return ProjectError(f"{doing}: no region configured", "pass --region us-east-1")
    if isinstance(e, ClientError):
        code = _code(e)
        message = e.response.get("Error", {}).get("Message") or str(e)
        hints = {
            "AccessDeniedException": "check the credentials (--profile) and their permissions",
            "UnrecognizedClientException": "check the credentials (--profile)",
            "InvalidSignatureException": "check the credentials (--profile)",
            "ServiceQuotaExceededException": "deregister versions you no longer need "
            "(aws panorama deregister-package-version) and run package-application again",
            "ConflictException": "wait for the other operation to finish, then run "
            "package-application again",
        }
        hint = hints.get(code, "fix the cause above and run package-application again")
        return ProjectError(f"{doing}: {code}: {message}", hint)
    return ProjectError(f"{doing}: {e}", "run package-application again")


def _call(clients: Clients, doing: str, fn: Callable[..., Any], **kwargs: Any) -> Any:

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as e:
        raise _api_error(e, doing, clients) from None


def _not_found(e: Exception) -> bool:
    return _code(e) in ("ResourceNotFoundException", "404", "NoSuchKey", "NotFound")


def list_package_ids(clients: Clients) -> dict[str, str]:
    """Package name -> id for the caller's account (ListPackages, every page)."""
    ids: dict[str, str] = {}
    token: str | None = None
    while True:
        kwargs = {"MaxResults": 25} | ({"NextToken": token} if token else {})
        page = _call(clients, "listing packages", clients.panorama.list_packages, **kwargs)
        for p in page.get("Packages", []):
            ids.setdefault(p["PackageName"], p["PackageId"])
        token = page.get("NextToken")
        if not token:
            return ids


def package_location(
    clients: Clients, name: str, known: dict[str, str], say: Say
) -> tuple[str, dict[str, str]]:
    """(package id, StorageLocation): DescribePackage, CreatePackage only when missing."""

    package_id = known.get(name)
    if package_id is not None:
        try:
            info = clients.panorama.describe_package(PackageId=package_id)
            return info["PackageId"], info["StorageLocation"]
        except ClientError as e:
            if not _not_found(e):  # anything but "gone since we listed" stops the run
                raise _api_error(e, f"describing package {name}", clients) from None
        except BotoCoreError as e:
            raise _api_error(e, f"describing package {name}", clients) from None
    info = _call(
        clients, f"creating package {name}", clients.panorama.create_package, PackageName=name
    )
    say(f"Created package {name} ({info['PackageId']})")
    known[name] = info["PackageId"]
    return info["PackageId"], info["StorageLocation"]


def latest_version(clients: Clients, package_id: str, pkg: LocalPackage) -> dict[str, Any] | None:
    """DescribePackageVersion without a patch: the latest patch, None when none."""

    try:
        return clients.panorama.describe_package_version(
            PackageId=package_id, PackageVersion=pkg.version
        )
    except ClientError as e:
        if _not_found(e):
            return None
        raise _api_error(e, f"describing {pkg.name} {pkg.version}", clients) from None
    except BotoCoreError as e:
        raise _api_error(e, f"describing {pkg.name} {pkg.version}", clients) from None


def _exists(clients: Clients, bucket: str, key: str) -> bool:

    try:
        clients.s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if _not_found(e):
            return False
        raise _api_error(e, f"checking s3://{bucket}/{key}", clients) from None
    except BotoCoreError as e:
        raise _api_error(e, f"checking s3://{bucket}/{key}", clients) from None


def _upload(clients: Clients, path: Path, bucket: str, key: str, progress: Progress) -> None:

    size = path.stat().st_size
    with progress.task(f"uploading {path.name}", size) as advance:
        try:
            clients.s3.upload_file(str(path), bucket, key, Callback=advance)
        except (ClientError, BotoCoreError, S3UploadFailedError) as e:
            raise _api_error(e, f"uploading {path.name} to s3://{bucket}/{key}", clients) from None


# ---- the command ---------------------------------------------------------------------


def package_application(
    project: Project,
    clients: Clients,
    paths: list[Path] | None = None,
    say: Say = print,
    progress: Progress = NO_PROGRESS,
    wait_timeout: float = WAIT_TIMEOUT,
    poll: float = 1.0,
) -> PackagedApp:
    """Upload and register every package of ``project`` (or only ``paths``)."""
    folders = package_folders(project, list(paths or []), say)
    if not folders:
        raise ProjectError(
            f"{project.packages_dir}: no package folders",
            "create one: panoptes app create-package --name NAME",
        )
    # Every folder read and every local asset checked before the first upload.
    packages = [read_package(project, f) for f in folders]
    known = list_package_ids(clients)
    result = PackagedApp()
    for pkg in packages:
        _package_one(project, clients, pkg, known, result, say, progress, wait_timeout, poll)
    say("All packages uploaded and registered successfully")
    return result


def _package_one(
    project: Project,
    clients: Clients,
    pkg: LocalPackage,
    known: dict[str, str],
    result: PackagedApp,
    say: Say,
    progress: Progress,
    wait_timeout: float,
    poll: float,
) -> None:
    say(f"Uploading package {pkg.name}")
    package_id, location = package_location(clients, pkg.name, known, say)
    bucket = location["Bucket"]
    latest = latest_version(clients, package_id, pkg)
    previous = None
    if latest is None:
        say(f"Package Version {pkg.version} is not yet registered, preparing upload")
    elif latest["PatchVersion"] == pkg.patch and latest["Status"] in (
        "REGISTER_COMPLETED",
        "REGISTER_PENDING",
    ):
        say(f"Patch Version {pkg.patch} already registered, ignoring upload")
        if latest["Status"] == "REGISTER_PENDING":
            _wait(clients, package_id, pkg, wait_timeout, poll, say)
        result.unchanged.append(pkg.name)
        return
    else:
        say(f"Patch version for the package {pkg.patch}")
        if latest["Status"] == "REGISTER_COMPLETED" and latest["PatchVersion"] != pkg.patch:
            previous = latest["PatchVersion"]

    binaries = location["BinaryPrefixLocation"].rstrip("/")
    uploaded: set[str] = set()
    for uri in pkg.uploads:
        key = f"{binaries}/{uri}"
        if _exists(clients, bucket, key):
            say(f"Asset {uri} already exists, ignoring upload")
            continue
        _upload(clients, project.assets_dir / uri, bucket, key, progress)
        uploaded.add(uri)
        say(f"upload: assets/{uri} to s3://{bucket}/{key}")

    manifest_key = (
        f"{location['ManifestPrefixLocation'].rstrip('/')}/{pkg.version}/{pkg.patch}.json"
    )
    if not _exists(clients, bucket, manifest_key):
        # The bytes that were hashed, not a re-read: the patch always matches the upload.
        _call(
            clients,
            f"uploading package.json of {pkg.name}",
            clients.s3.put_object,
            Bucket=bucket,
            Key=manifest_key,
            Body=pkg.manifest_bytes,
        )
        say(f"upload: {project.rel(pkg.folder)}/package.json to s3://{bucket}/{manifest_key}")

    _register(clients, project, pkg, package_id, bucket, binaries, uploaded)
    say(f"Called register package version for {pkg.name} with patch version {pkg.patch}")
    _wait(clients, package_id, pkg, wait_timeout, poll, say)
    result.registered.append((pkg.name, pkg.version, pkg.patch))

    if previous:
        _deregister(clients, package_id, pkg, previous, result, say)


def _register(
    clients: Clients,
    project: Project,
    pkg: LocalPackage,
    package_id: str,
    bucket: str,
    binaries: str,
    uploaded: set[str],
) -> None:

    doing = f"registering {pkg.name} {pkg.version} patch {pkg.patch}"
    try:
        clients.panorama.register_package_version(
            PackageId=package_id,
            PackageVersion=pkg.version,
            PatchVersion=pkg.patch,
            MarkLatest=True,
        )
    except ClientError as e:
        if _code(e) != "ValidationException":
            raise _api_error(e, doing, clients) from None
        message = e.response.get("Error", {}).get("Message") or str(e)
        bad = [uri for uri in pkg.uploads if uri in message]
        local = [u for u in bad if u in uploaded]
        remote = [u for u in bad if u not in uploaded]
        for uri in local:
            # Ours, just uploaded and refused: remove it, or the next run would find it
            # "already there" and skip uploading the repaired file.
            with contextlib.suppress(ClientError, BotoCoreError):
                clients.s3.delete_object(Bucket=bucket, Key=f"{binaries}/{uri}")
        if local:
            hint = (
                f"assets/{local[0]} does not hold what its name (its SHA-256) promises: "
                "rebuild it (panoptes app build-container / add-raw-model) and run "
                "package-application again"
            )
        elif remote:
            hint = (
                f"the copy already in the bucket is bad: delete it (aws s3 rm "
                f"s3://{bucket}/{binaries}/{remote[0]}) and run package-application again"
            )
        else:
            hint = f"fix {project.rel(pkg.folder)}/package.json and run package-application again"
        raise ProjectError(f"{doing}: the service refused it: {message}", hint) from None
    except BotoCoreError as e:
        raise _api_error(e, doing, clients) from None


def _wait(
    clients: Clients,
    package_id: str,
    pkg: LocalPackage,
    timeout: float,
    poll: float,
    say: Say,
) -> None:
    """Poll DescribePackageVersion until REGISTER_COMPLETED; FAILED or timeout: error."""
    deadline = time.monotonic() + timeout
    delay, told = poll, False
    while True:
        info = _call(
            clients,
            f"checking the registration of {pkg.name} patch {pkg.patch}",
            clients.panorama.describe_package_version,
            PackageId=package_id,
            PackageVersion=pkg.version,
            PatchVersion=pkg.patch,
        )
        status = info.get("Status")
        if status == "REGISTER_COMPLETED":
            say(f"Register patch version complete for {pkg.name} with patch version {pkg.patch}")
            return
        if status in ("FAILED", "DELETING"):
            why = info.get("StatusDescription") or "no reason given"
            raise ProjectError(
                f"register patch version failed for {pkg.name} with patch version "
                f"{pkg.patch}: {status}: {why}",
                "fix the error and run package-application again",
            )
        if time.monotonic() + delay > deadline:
            raise ProjectError(
                f"{pkg.name} patch {pkg.patch} is still {status} after {timeout:.0f}s",
                "run package-application again later (it resumes), or raise --wait-timeout",
            )
        if not told:
            say(f"Waiting for register package version to finish for {pkg.name}")
            told = True
        time.sleep(delay)
        delay = min(delay * 2, 15.0)


def _deregister(
    clients: Clients,
    package_id: str,
    pkg: LocalPackage,
    previous: str,
    result: PackagedApp,
    say: Say,
) -> None:

    try:
        clients.panorama.deregister_package_version(
            PackageId=package_id, PackageVersion=pkg.version, PatchVersion=previous
        )
    except (ClientError, BotoCoreError) as e:
        # The new patch is registered and latest: keeping the old one is no failure
        # (a deployed application may still use it).
        reason = e.response.get("Error", {}).get("Message") if isinstance(e, ClientError) else e
        result.notes.append(f"kept previous patch version {previous} of {pkg.name}: {reason}")
        return
    say(f"Deregistering previous patch version {previous} for {pkg.name}")
    result.deregistered.append((pkg.name, previous))
