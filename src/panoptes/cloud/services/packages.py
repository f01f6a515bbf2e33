"""Node packages, their versions and nodes.

CreatePackage hands out a StorageLocation in the object store (one bucket per
account, ``ACCOUNT/nodePackages/NAME/{binaries,manifests,generated}``). The client
uploads assets to ``binaries/<sha256>.<ext>`` and the package.json to
``manifests/VERSION/PATCH.json``, PATCH being the SHA-256 of that file, then calls
RegisterPackageVersion: it checks the manifest with panoptes.spec and every asset
against its content-addressed name before anything is recorded, and creates one
node per interface.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import func, select

from panoptes.cloud.db.models import (
    ApplicationInstance,
    NodeInstance,
    NodeRow,
    Package,
    PackageVersion,
)
from panoptes.cloud.errors import (
    AccessDenied,
    Conflict,
    QuotaExceeded,
    ResourceNotFound,
    ValidationError,
)
from panoptes.cloud.services import states
from panoptes.cloud.services.common import (
    Call,
    drop_tags,
    get_owned,
    invalid,
    iso,
    lock_account,
    new_id,
    paginate,
    set_tags,
    tags_of,
)
from panoptes.spec import validate_document
from panoptes.spec.models import package_from_dict

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def bucket_of(account: str) -> str:
    return f"panoptes-{account}"


def storage_location(package: Package) -> dict[str, str]:
    return {
        "Bucket": package.bucket,
        "RepoPrefixLocation": package.prefix,
        "GeneratedPrefixLocation": f"{package.prefix}/generated",
        "BinaryPrefixLocation": f"{package.prefix}/binaries",
        "ManifestPrefixLocation": f"{package.prefix}/manifests",
    }


def manifest_key(package: Package, version: str, patch: str) -> str:
    return f"{package.prefix}/manifests/{version}/{patch}.json"


def node_id(package_name: str, version: str, patch: str, interface: str) -> str:
    """As Panorama forms them: ``SAMPLE_CODE-1.0-fd3dxmpl-interface``."""
    return f"{package_name}-{version}-{patch[:8]}-{interface}"


#: Panorama accepted a package's name where an id is expected, written this way
#: (panorama-cli's package-application relies on it).
BY_NAME = "packageName/"


def get_package(call: Call, package_id: str) -> Package:
    if not package_id.startswith(BY_NAME):
        return get_owned(call, Package, package_id, "package")
    package = package_by_name(call, package_id[len(BY_NAME) :])
    if package is None:
        raise ResourceNotFound(package_id, "package")
    return package


def package_by_name(call: Call, name: str) -> Package | None:
    return call.session.scalars(
        select(Package).where(Package.account_id == call.account, Package.name == name)
    ).first()


# --- packages -------------------------------------------------------------------------


def create_package_row(call: Call, name: str, tags: dict[str, str] | None) -> Package:
    lock_account(call)
    if package_by_name(call, name) is not None:
        raise Conflict(f"package {name!r} exists already", name, "package")
    limit = call.env.settings.limits.packages
    count = call.session.scalar(
        select(func.count()).select_from(Package).where(Package.account_id == call.account)
    )
    if (count or 0) >= limit:
        raise QuotaExceeded(
            f"an account has at most {limit} packages per Region",
            "panorama-packages",
            resource_type="package",
        )
    bucket = bucket_of(call.account)
    if not call.env.store.bucket_exists(bucket):
        call.env.store.create_bucket(bucket)
    package = Package(
        id=new_id("package"),
        account_id=call.account,
        region=call.ctx.region,
        name=name,
        bucket=bucket,
        prefix=f"{call.account}/nodePackages/{name}",
        created=call.now,
    )
    call.session.add(package)
    call.session.flush()
    set_tags(call, call.arn("package", package.id), tags)
    return package


def create_package(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    package = create_package_row(call, p["PackageName"], p.get("Tags"))
    return {
        "Arn": call.arn("package", package.id),
        "PackageId": package.id,
        "StorageLocation": storage_location(package),
    }


def describe_package(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    package = get_package(call, p["PackageId"])
    package_arn = call.arn("package", package.id)
    return {
        "Arn": package_arn,
        "CreatedTime": package.created,
        "PackageId": package.id,
        "PackageName": package.name,
        "StorageLocation": storage_location(package),
        "Tags": tags_of(call.session, package_arn),
    }


def list_packages(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    rows = call.session.scalars(select(Package).where(Package.account_id == call.account)).all()
    page = paginate(rows, lambda r: (r.name, r.id), p, "ListPackages")
    return page.out(
        "Packages",
        lambda r: {
            "Arn": call.arn("package", r.id),
            "CreatedTime": r.created,
            "PackageId": r.id,
            "PackageName": r.name,
            "Tags": tags_of(call.session, call.arn("package", r.id)),
        },
    )


def delete_package(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    package = get_package(call, p["PackageId"])
    if package.versions and not p.get("ForceDelete"):
        listed = ", ".join(f"{v.version}/{v.patch_version[:8]}" for v in package.versions)
        raise Conflict(
            f"package {package.name} has registered versions ({listed}): deregister them "
            "or pass ForceDelete",
            package.id,
            "package",
        )
    for version in list(package.versions):
        _refuse_if_used(call, version)
        version.status = states.PACKAGE_VERSION.next(version.status, "deregister", package.id)
    store = call.env.store
    for info in list(store.list(package.bucket, prefix=package.prefix + "/")):
        store.delete(package.bucket, info.key)
    drop_tags(call.session, call.arn("package", package.id))
    call.session.delete(package)
    return {}


# --- package versions -----------------------------------------------------------------


def _check_owner(call: Call, owner: str | None) -> None:
    if owner is not None and owner != call.account:
        raise AccessDenied(f"account {call.account} cannot act on packages of {owner}")


def _validation(problems: list[tuple[str, str]], what: str) -> ValidationError:
    """One ValidationException listing every problem, one line each."""
    lines = "\n".join(f"{path}: {msg}" for path, msg in problems)
    return ValidationError(
        f"{what} ({len(problems)} problem(s)):\n{lines}",
        fields=[{"Name": path, "Message": msg} for path, msg in problems],
        reason="FIELD_VALIDATION_FAILED",
    )


def read_manifest(call: Call, package: Package, version: str, patch: str) -> dict[str, Any]:
    """The package.json uploaded for VERSION/PATCH, checked; ValidationException if not."""
    store, key = call.env.store, manifest_key(package, version, patch)
    info = store.head(package.bucket, key)
    if info is None:
        raise invalid(
            "PatchVersion",
            f"no package.json at s3://{package.bucket}/{key}: upload it before registering",
        )
    if info.sha256 != patch:
        raise invalid(
            "PatchVersion",
            f"is not the SHA-256 of s3://{package.bucket}/{key} (that file's is {info.sha256})",
        )
    with store.open(package.bucket, key) as f:
        raw = f.read()
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise invalid("PatchVersion", f"{key} is not JSON: {exc}") from None
    report = validate_document(doc, "nodePackage")
    problems = [(p.path, _line(p)) for p in report.errors]
    if not problems:
        body = doc["nodePackage"]
        if body.get("name") not in (None, package.name):
            problems.append(("nodePackage.name", f"is {body['name']!r}, not {package.name!r}"))
        if body.get("version") not in (None, version):
            problems.append(("nodePackage.version", f"is {body['version']!r}, not {version!r}"))
        problems += _asset_problems(call, package, doc)
    if problems:
        raise _validation(problems, f"package {package.name} {version} cannot be registered")
    return doc


def _line(problem: Any) -> str:
    return f"{problem.message} (fix: {problem.hint})" if problem.hint else problem.message


def _asset_problems(call: Call, package: Package, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Every asset file the manifest names must exist and match its SHA-256 name."""
    binaries = storage_location(package)["BinaryPrefixLocation"]
    found: list[tuple[str, str]] = []
    for i, asset in enumerate(doc["nodePackage"].get("assets", [])):
        for j, impl in enumerate(asset.get("implementations", [])):
            if impl.get("type") == "system":
                continue  # built into the device (camera source, HDMI sink): nothing uploaded
            for field in ("assetUri", "descriptorUri"):
                name = impl.get(field)
                if not name:
                    continue
                path = f"nodePackage.assets[{i}].implementations[{j}].{field}"
                info = call.env.store.head(package.bucket, f"{binaries}/{name}")
                if info is None:
                    found.append(
                        (path, f"asset {name} is not in s3://{package.bucket}/{binaries}/")
                    )
                    continue
                digest = name.split(".", 1)[0]
                if _SHA256.match(digest) and info.sha256 != digest:
                    found.append(
                        (path, f"asset {name} was altered: its content's SHA-256 is {info.sha256}")
                    )
    return found


def add_version(
    call: Call,
    package: Package,
    version: str,
    patch: str,
    doc: dict[str, Any],
    mark_latest: bool,
) -> PackageVersion:
    """Record a checked manifest as a registered version with its nodes."""
    limit = call.env.settings.limits.versions_per_package
    if len(package.versions) >= limit:
        raise QuotaExceeded(
            f"a package has at most {limit} versions: deregister old ones",
            "panorama-package-versions",
            resource_type="package",
            resource_id=package.id,
        )
    row = PackageVersion(
        package=package,
        owner_account=call.account,
        version=version,
        patch_version=patch,
        status="REGISTER_PENDING",
        manifest=doc,
        created=call.now,
    )
    call.session.add(row)
    call.session.flush()
    model = package_from_dict(doc)
    for itf in model.interfaces:
        call.session.add(
            NodeRow(
                node_id=node_id(package.name, version, patch, itf.name),
                package_version=row,
                account_id=call.account,
                name=itf.name,
                category=itf.category.upper(),
                description=(itf.description or model.description or "")[:255],
                asset_name=itf.asset,
                interface=_interface_doc(itf),
                created=call.now,
            )
        )
    row.status = states.PACKAGE_VERSION.next(row.status, "verified", package.id)
    row.status_description = "Package version registered."
    row.registered = call.now
    _mark_latest(call, package, row, force=mark_latest)
    call.session.flush()
    return row


def _interface_doc(itf: Any) -> dict[str, Any]:
    def port(p: Any, inp: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": p.name, "Type": p.type.upper()}
        if p.description is not None:
            out["Description"] = p.description
        if inp and p.has_default:
            out["DefaultValue"] = (
                json.dumps(p.default) if not isinstance(p.default, str) else p.default
            )
        if inp and p.max_connections:
            out["MaxConnections"] = p.max_connections
        return out

    return {
        "Inputs": [port(x, True) for x in itf.inputs],
        "Outputs": [port(x, False) for x in itf.outputs],
    }


def _mark_latest(call: Call, package: Package, row: PackageVersion, force: bool) -> None:
    siblings = [v for v in package.versions if v.version == row.version and v is not row]
    # The first patch of a version is its latest even unmarked: graphs name versions
    # without patches, and "no latest" would leave them unresolvable.
    if force or not any(v.is_latest for v in siblings):
        for v in siblings:
            v.is_latest = False
        row.is_latest = True


def find_version(
    call: Call, package: Package, version: str, patch: str | None
) -> PackageVersion | None:
    for v in package.versions:
        if v.version == version and (v.patch_version == patch if patch else v.is_latest):
            return v
    return None


def register_package_version(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    _check_owner(call, p.get("OwnerAccount"))
    package = get_package(call, p["PackageId"])
    version, patch = p["PackageVersion"], p["PatchVersion"]
    existing = find_version(call, package, version, patch)
    if existing is not None:
        # Re-registering the same patch (a re-run of package-application) is a no-op.
        if existing.status != "REGISTER_COMPLETED":
            raise Conflict(
                f"{package.name} {version} patch {patch} is {existing.status}",
                package.id,
                "package",
            )
        if p.get("MarkLatest"):
            _mark_latest(call, package, existing, force=True)
        return {}
    doc = read_manifest(call, package, version, patch)
    add_version(call, package, version, patch, doc, bool(p.get("MarkLatest")))
    return {}


def _refuse_if_used(call: Call, version: PackageVersion) -> None:
    users = call.session.scalars(
        select(ApplicationInstance.id)
        .join(NodeInstance, NodeInstance.application_instance_id == ApplicationInstance.id)
        .where(
            ApplicationInstance.account_id == call.account,
            ApplicationInstance.status.in_(states.ACTIVE_INSTANCE_STATUSES),
            NodeInstance.package_name == version.package.name,
            NodeInstance.package_version == version.version,
            NodeInstance.patch_version == version.patch_version,
        )
    ).all()
    if users:
        raise Conflict(
            f"{version.package.name} {version.version} is used by application instance(s) "
            f"{', '.join(sorted(set(users)))}",
            version.package.id,
            "package",
        )


def deregister_package_version(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    _check_owner(call, p.get("OwnerAccount"))
    package = get_package(call, p["PackageId"])
    version, patch = p["PackageVersion"], p["PatchVersion"]
    row = find_version(call, package, version, patch)
    if row is None:
        raise ResourceNotFound(f"{package.id}/{version}/{patch}", "packageVersion")
    _refuse_if_used(call, row)
    successor = None
    if new_latest := p.get("UpdatedLatestPatchVersion"):
        successor = find_version(call, package, version, new_latest)
        if successor is None or successor is row:
            raise invalid("UpdatedLatestPatchVersion", f"{version} has no other patch {new_latest}")
    row.status = states.PACKAGE_VERSION.next(row.status, "deregister", package.id)
    was_latest = row.is_latest
    package.versions.remove(row)
    call.session.delete(row)
    call.session.flush()
    if successor is not None:
        _mark_latest(call, package, successor, force=True)
    elif was_latest:
        rest = sorted(
            (v for v in package.versions if v.version == version), key=lambda v: v.created
        )
        if rest:
            rest[-1].is_latest = True
    call.env.store.delete(package.bucket, manifest_key(package, version, patch))
    return {}


def describe_package_version(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    _check_owner(call, p.get("OwnerAccount"))
    package = get_package(call, p["PackageId"])
    version, patch = p["PackageVersion"], p.get("PatchVersion")
    row = find_version(call, package, version, patch)
    if row is None:
        raise ResourceNotFound(
            f"{package.id}/{version}" + (f"/{patch}" if patch else ""), "packageVersion"
        )
    out = {
        "IsLatestPatch": row.is_latest,
        "OwnerAccount": row.owner_account,
        "PackageArn": call.arn("package", package.id),
        "PackageId": package.id,
        "PackageName": package.name,
        "PackageVersion": row.version,
        "PatchVersion": row.patch_version,
        "Status": row.status,
    }
    if row.registered:
        out["RegisteredTime"] = row.registered
    if row.status_description:
        out["StatusDescription"] = row.status_description
    return out


# --- nodes ----------------------------------------------------------------------------


def _node_out(call: Call, node: NodeRow, full: bool) -> dict[str, Any]:
    version = node.package_version
    package = version.package
    out: dict[str, Any] = {
        "Category": node.category,
        "CreatedTime": node.created,
        "Description": node.description,
        "Name": node.name,
        "NodeId": node.node_id,
        "OwnerAccount": version.owner_account,
        "PackageArn": call.arn("package", package.id),
        "PackageId": package.id,
        "PackageName": package.name,
        "PackageVersion": version.version,
        "PatchVersion": version.patch_version,
    }
    if full:
        out["LastUpdatedTime"] = version.registered or node.created
        out["NodeInterface"] = node.interface
        if node.asset_name:
            out["AssetName"] = node.asset_name
    return out


def list_nodes(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    _check_owner(call, p.get("OwnerAccount"))
    query = (
        select(NodeRow)
        .join(PackageVersion, NodeRow.package_version_id == PackageVersion.id)
        .join(Package, PackageVersion.package_id == Package.id)
        .where(NodeRow.account_id == call.account)
    )
    if category := p.get("Category"):
        query = query.where(NodeRow.category == category)
    if name := p.get("PackageName"):
        query = query.where(Package.name == name)
    if version := p.get("PackageVersion"):
        query = query.where(PackageVersion.version == version)
    if patch := p.get("PatchVersion"):
        query = query.where(PackageVersion.patch_version == patch)
    rows = call.session.scalars(query).all()
    scope = f"ListNodes|{category}|{name}|{version}|{patch}"
    page = paginate(rows, lambda n: (iso(n.created), n.node_id), p, scope)
    return page.out("Nodes", lambda n: _node_out(call, n, full=False))


def describe_node(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    _check_owner(call, p.get("OwnerAccount"))
    node = call.session.scalars(
        select(NodeRow).where(NodeRow.account_id == call.account, NodeRow.node_id == p["NodeId"])
    ).first()
    if node is None:
        raise ResourceNotFound(p["NodeId"], "node")
    return _node_out(call, node, full=True)
