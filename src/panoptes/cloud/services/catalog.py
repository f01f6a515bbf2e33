"""The registered packages as a panoptes.spec PackageSource.

Graphs name ``ACCOUNT::NAME`` at a version, optionally a patch; this source answers
with the registered latest patch (or the pinned one) of the caller's account, and
remembers what it picked so the deployment records exact patch versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from panoptes.cloud.db.models import PackageVersion
from panoptes.cloud.services.common import Call
from panoptes.cloud.services.packages import find_version, package_by_name
from panoptes.spec import FoundPackage, PackageRef, Report
from panoptes.spec.models import package_from_dict


@dataclass
class RegisteredPackages:
    call: Call
    picked: dict[tuple[str, str], PackageVersion] = field(default_factory=dict)

    def find(self, ref: PackageRef, report: Report) -> FoundPackage | None:
        if ref.account != self.call.account:
            return None
        package = package_by_name(self.call, ref.name)
        if package is None:
            return None
        row = find_version(self.call, package, ref.version, ref.patch_version)
        if row is None or row.status != "REGISTER_COMPLETED":
            return None
        self.picked[(ref.qualified, ref.version)] = row
        source = f"{package.id} {row.version} patch {row.patch_version}"
        return FoundPackage(package_from_dict(row.manifest), source)
