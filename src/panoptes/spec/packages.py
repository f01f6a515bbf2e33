"""Where node packages come from: built-ins, a project's packages/ folder, a registry.

A `PackageSource` answers "what is package ACCOUNT::NAME at VERSION?". The spec
ships two sources: `BUILTIN_PACKAGES` (Panorama's abstract camera and HDMI sink)
and `DirectoryPackages` (a panorama-cli project folder). The control plane plugs in
its own source backed by registered package versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from panoptes.spec.documents import validate_file
from panoptes.spec.models import Interface, NodePackage, PackageRef, Port, package_from_dict
from panoptes.spec.problems import Report

ABSTRACT_CAMERA = "panorama::abstract_rtsp_media_source"
HDMI_SINK = "panorama::hdmi_data_sink"


@dataclass(frozen=True)
class FoundPackage:
    """A package and where it was read from (for messages)."""

    package: NodePackage
    source: str
    builtin: bool = False


class PackageSource(Protocol):
    def find(self, ref: PackageRef, report: Report) -> FoundPackage | None:
        """The package, or None. Problems reading it go to ``report``."""
        ...


BUILTIN_PACKAGES: dict[tuple[str, str], NodePackage] = {
    (ABSTRACT_CAMERA, "1.0"): NodePackage(
        name="abstract_rtsp_media_source",
        version="1.0",
        description="Placeholder for a camera stream chosen at deployment",
        interfaces=(
            Interface("rtsp_v1_interface", "media_source", outputs=(Port("video_out", "media"),)),
        ),
    ),
    (HDMI_SINK, "1.0"): NodePackage(
        name="hdmi_data_sink",
        version="1.0",
        description="The device's video output",
        interfaces=(Interface("hdmi0", "media_sink", inputs=(Port("video_in", "media"),)),),
    ),
}


def find_builtin(ref: PackageRef) -> FoundPackage | None:
    pkg = BUILTIN_PACKAGES.get((ref.qualified, ref.version))
    return FoundPackage(pkg, "built-in", builtin=True) if pkg else None


def is_builtin_name(qualified: str) -> bool:
    return any(name == qualified for name, _ in BUILTIN_PACKAGES)


_FOLDER = re.compile(r"^(?P<account>[^-]+)-(?P<name>.+)-(?P<version>[0-9]+\.[0-9]+)$")


@dataclass
class DirectoryPackages:
    """Packages of a project: ``packages/ACCOUNT-NAME-VERSION/package.json``."""

    root: Path
    _cache: dict[PackageRef, FoundPackage | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if (p / "package.json").is_file())

    def find(self, ref: PackageRef, report: Report) -> FoundPackage | None:
        key = PackageRef(ref.account, ref.name, ref.version)
        if key in self._cache:
            return self._cache[key]
        found = self._load(key, report)
        self._cache[key] = found
        return found

    def _load(self, ref: PackageRef, report: Report) -> FoundPackage | None:
        folder = self.root / ref.folder_name
        if not (folder / "package.json").is_file():
            return None
        path = folder / "package.json"
        doc, problems = validate_file(path, "nodePackage")
        report.extend(problems)
        if doc is None or not problems.ok:
            return None
        pkg = package_from_dict(doc)
        mismatch = Report()
        if pkg.name is not None and pkg.name != ref.name:
            mismatch.error(
                "nodePackage.name",
                f"is {pkg.name!r} but the folder and graph say {ref.name!r}",
                f'set "name": "{ref.name}" or rename the folder',
            )
        if pkg.version is not None and pkg.version != ref.version:
            mismatch.error(
                "nodePackage.version",
                f"is {pkg.version!r} but the folder and graph say {ref.version!r}",
                f'set "version": "{ref.version}"',
            )
        report.extend(mismatch, source=str(path))
        return FoundPackage(pkg, str(path))


@dataclass
class ChainedPackages:
    """Built-ins first, then each source in turn."""

    sources: tuple[PackageSource, ...] = ()

    def find(self, ref: PackageRef, report: Report) -> FoundPackage | None:
        found = find_builtin(ref)
        for source in self.sources:
            if found is not None:
                break
            found = source.find(ref, report)
        return found


def folder_ref(folder: Path) -> PackageRef | None:
    """The package a panorama-cli folder name ACCOUNT-NAME-VERSION stands for."""
    m = _FOLDER.match(Path(folder).name)
    return PackageRef(m["account"], m["name"], m["version"]) if m else None
