"""From one desired application instance to a RunPlan, the way `panoptes app run` does it.

The control plane sends the manifest, the overrides and every package the plan needs
(package.json and assets). The device lays them out as a project folder::

    INSTANCE/project/graphs/app/graph.json
    INSTANCE/project/packages/ACCOUNT-NAME-VERSION/package.json
    INSTANCE/project/assets/<asset file>      (hard links into the asset cache)

then resolves it with panoptes.spec (``deployment=True``: overrides as given, routing
rules opened only where the overrides confirm them) and plans it with
panoptes.runtime.make_plan, each camera node instance fed by its registered stream
URL with the camera's credentials put into it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from panoptes.agent.assets import AssetCache
from panoptes.media.camera_url import with_credentials
from panoptes.runtime import RunError, RunPlan, make_plan
from panoptes.spec import ManifestError, resolve

BUILTIN_ACCOUNT = "panorama"  # Panorama's own packages: built into panoptes.spec


class DeploymentError(Exception):
    """The instance cannot be deployed; the message is its StatusDescription."""


def package_key(account: str, name: str, version: str, patch: str | None) -> tuple[str, ...]:
    return (str(account), str(name), str(version), str(patch or ""))


def needed_packages(entry: dict[str, Any], packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The desired state's package entries this instance's plan names (exact patch)."""
    by_key = {
        package_key(p["Account"], p["Name"], p["Version"], p.get("PatchVersion")): p
        for p in packages
    }
    out = []
    for ref in (entry.get("Plan") or {}).get("packages", []):
        if ref is None or ref.get("account") == BUILTIN_ACCOUNT:
            continue
        key = package_key(ref["account"], ref["name"], ref["version"], ref.get("patchVersion"))
        found = by_key.get(key)
        if found is None:
            raise DeploymentError(
                f"package {ref['account']}::{ref['name']} {ref['version']} (patch "
                f"{ref.get('patchVersion')}) is not in the device's desired state"
            )
        out.append(found)
    return out


def fetch_assets(packages: list[dict[str, Any]], cache: AssetCache) -> dict[str, Path]:
    """Every asset of ``packages`` in the cache; {file name in assets/: cached path}."""
    files = {}
    for pkg in packages:
        for asset in pkg.get("Assets") or []:
            files[str(asset["Name"])] = cache.fetch(asset)
    return files


def _link(src: Path, dest: Path) -> None:
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)  # the cache and the instance share one copy
    except OSError:
        shutil.copy2(src, dest)


def lay_out(
    root: Path, entry: dict[str, Any], packages: list[dict[str, Any]], files: dict[str, Path]
) -> Path:
    """Write the project folder of ``entry`` under ``root``; its path."""
    project = root / "project"
    if project.exists():
        shutil.rmtree(project)
    graph = project / "graphs" / "app" / "graph.json"
    graph.parent.mkdir(parents=True)
    graph.write_text(_text(entry.get("Manifest"), "Manifest"))
    for pkg in packages:
        folder = project / "packages" / f"{pkg['Account']}-{pkg['Name']}-{pkg['Version']}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(json.dumps(pkg["Manifest"], indent=2))
    assets = project / "assets"
    assets.mkdir()
    for name, path in files.items():
        if "/" in name or name in ("", ".", ".."):
            raise DeploymentError(f"asset name {name!r} is not a plain file name")
        _link(path, assets / name)
    overrides = entry.get("Overrides")
    if overrides:
        (project / "graphs" / "app" / "overrides.json").write_text(_text(overrides, "Overrides"))
    return project


def _text(value: Any, field: str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    raise DeploymentError(f"the desired state's {field} is missing")


def stream_url(camera: dict[str, Any]) -> str:
    """The camera's StreamUrl with Username/Password in it (unless it carries some)."""
    url = str(camera.get("StreamUrl") or "")
    parts = urlsplit(url)
    if not url or not camera.get("Username") or "@" in parts.netloc or not parts.scheme:
        return url
    return with_credentials(url, str(camera["Username"]), camera.get("Password"))


def plan(project: Path, entry: dict[str, Any]) -> RunPlan:
    """Resolve the laid-out project with its overrides and plan it for the runtime."""
    graph = project / "graphs" / "app" / "graph.json"
    overrides = project / "graphs" / "app" / "overrides.json"
    cameras = {node: [stream_url(cam)] for node, cam in (entry.get("Cameras") or {}).items()}
    try:
        app = resolve(
            json.loads(graph.read_text()),
            json.loads(overrides.read_text()) if overrides.is_file() else None,
            project / "packages",
            deployment=True,
            graph_source="Manifest",
            overrides_source="Overrides",
        )
        return make_plan(app, project, cameras)
    except ManifestError as exc:
        raise DeploymentError(f"the application does not resolve on the device: {exc}") from None
    except RunError as exc:
        raise DeploymentError(str(exc)) from None
    except ValueError as exc:
        raise DeploymentError(f"the manifest or overrides are not JSON: {exc}") from None
