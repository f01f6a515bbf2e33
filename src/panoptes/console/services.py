"""How the console reaches the control plane: the API's own backends, as the user's account.

Every Panorama action is ``backend.handle(operation, RequestContext, params)`` with
a context for the signed-in user's account, exactly what a signed API request
gets. `RegisteredPackageSource` lets the deploy wizard validate a graph against the
account's registered packages through the same operations (and the package's
manifest object, as an S3 client reads it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from panoptes.cloud.backend import ServiceBackend
from panoptes.cloud.context import RequestContext
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.protocol.shapes import Problems, check_constraints, check_required
from panoptes.cloud.storage.base import ObjectStore
from panoptes.console.users import User
from panoptes.spec import FoundPackage, PackageRef, Report
from panoptes.spec.models import package_from_dict

log = logging.getLogger(__name__)

#: The API accepts a package's name where an id is expected, written this way.
BY_NAME = "packageName/"


@dataclass
class Console:
    """The backends by service name (the same dict the API front serves) and the store."""

    backends: Mapping[str, ServiceBackend]
    store: ObjectStore
    region: str

    def context(self, user: User) -> RequestContext:
        return RequestContext(
            account_id=user.account_id,
            region=self.region,
            access_key_id="console",
            principal=f"console:{user.name}",
        )

    def has(self, service: str) -> bool:
        return service in self.backends

    def call(
        self,
        user: User,
        operation: str,
        params: dict[str, Any] | None = None,
        *,
        service: str = "panorama",
    ) -> dict[str, Any]:
        """One operation as USER's account; ServiceError as the API would answer it.

        Parameters are checked against the operation's input shape first (required
        members, lengths, patterns, enums): what the API's parser would refuse, the
        console refuses with the same words.
        """
        params = params or {}
        if service == "panorama":
            check_input(service, operation, params)
        return self.backends[service].handle(operation, self.context(user), params)

    def all_pages(
        self, user: User, operation: str, key: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paged listing (the console shows whole lists, sorted)."""
        out: list[dict[str, Any]] = []
        params = dict(params or {})
        for _ in range(1000):  # bounded: 1000 pages of 25 is more than any quota allows
            page = self.call(user, operation, params)
            out.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        return out


def check_input(service: str, operation: str, params: dict[str, Any]) -> None:
    """ValidationException for params the service model refuses (as the wire parser does)."""
    shape = load_service_model(service).operation_model(operation).input_shape
    if shape is None:
        return
    problems = Problems()
    _walk(shape, params, "", problems)
    problems.raise_if_any()


def _walk(shape: Any, value: Any, path: str, problems: Problems) -> None:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                _walk(member, value[name], f"{path}.{name}" if path else name, problems)
        check_required(shape, value, path, problems)
        return
    if kind == "list" and isinstance(value, list):
        check_constraints(shape, value, path, problems)
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}.{i}", problems)
        return
    if kind == "map" and isinstance(value, dict):
        check_constraints(shape, value, path, problems)
        for key, item in value.items():
            _walk(shape.key, key, f"{path}.{key}", problems)
            _walk(shape.value, item, f"{path}.{key}", problems)
        return
    if kind in ("string", "integer", "long", "float", "double") and not isinstance(value, bool):
        if isinstance(value, str) == (kind == "string"):
            check_constraints(shape, value, path, problems)


@dataclass
class RegisteredPackageSource:
    """panoptes.spec's PackageSource over the API: what CreateApplicationInstance sees."""

    console: Console
    user: User

    def find(self, ref: PackageRef, report: Report) -> FoundPackage | None:
        if ref.account != self.user.account_id:
            return None
        package_id = BY_NAME + ref.name
        try:
            version = self.console.call(
                self.user,
                "DescribePackageVersion",
                {"PackageId": package_id, "PackageVersion": ref.version}
                | ({"PatchVersion": ref.patch_version} if ref.patch_version else {}),
            )
            if version.get("Status") != "REGISTER_COMPLETED":
                return None
            location = self.console.call(self.user, "DescribePackage", {"PackageId": package_id})[
                "StorageLocation"
            ]
        except ServiceError:
            return None
        key = f"{location['ManifestPrefixLocation']}/{ref.version}/{version['PatchVersion']}.json"
        try:
            with self.console.store.open(location["Bucket"], key) as f:
                doc = json.load(f)
            package = package_from_dict(doc)
        except (KeyError, ValueError, TypeError):
            log.warning("package %s: manifest %s unreadable", ref, key)
            return None
        return FoundPackage(package, f"{version['PackageId']} {ref.version}")
