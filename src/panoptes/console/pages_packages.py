"""Packages: every package of the account with its registered versions and nodes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from panoptes.cloud.errors import ServiceError
from panoptes.console.web import PageRequest


def _packages(req: PageRequest) -> list[dict[str, Any]]:
    console = req.state.console
    packages = console.all_pages(req.user, "ListPackages", "Packages")
    nodes = console.all_pages(req.user, "ListNodes", "Nodes")
    versions: dict[str, dict[tuple[str, str], list[dict]]] = defaultdict(dict)
    for node in nodes:
        key = (node["PackageVersion"], node["PatchVersion"])
        versions[node["PackageName"]].setdefault(key, []).append(node)
    out = []
    for pkg in sorted(packages, key=lambda p: p["PackageName"]):
        rows = []
        for (version, patch), its_nodes in sorted(versions[pkg["PackageName"]].items()):
            try:
                info = console.call(
                    req.user,
                    "DescribePackageVersion",
                    {
                        "PackageId": pkg["PackageId"],
                        "PackageVersion": version,
                        "PatchVersion": patch,
                    },
                )
            except ServiceError:
                continue
            rows.append({**info, "Nodes": its_nodes})
        out.append({**pkg, "Versions": rows})
    return out


async def packages_list(req: PageRequest) -> Response:
    packages = await run_in_threadpool(_packages, req)
    return req.render("packages.html", title="Packages", packages=packages)
