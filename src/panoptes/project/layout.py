"""Where things live in a project folder and how package folders are named.

panorama-cli's layout: ``graphs/<app>/graph.json``, ``packages/<ACCOUNT>-<NAME>-<VERSION>/``,
``assets/<sha256>.<ext>``. Graphs refer to packages as ``ACCOUNT::NAME``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from panoptes.project.errors import ProjectError

DEFAULT_ACCOUNT = "123456789012"
ACCOUNT_ENV = "PANOPTES_ACCOUNT_ID"

ACCOUNT_RE = re.compile(r"^\d{12}$")
NAME_RE = re.compile(r"^[a-z_A-Z0-9\-]{1,128}$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")
ASSET_NAME_RE = re.compile(r"^[$A-Z_a-z0-9\-]{1,255}$")
# ACCOUNT-NAME-VERSION; NAME may itself contain dashes, VERSION may not.


def default_account() -> str:
    """The account used when --account-id is not given (there is no AWS to ask)."""
    return os.environ.get(ACCOUNT_ENV) or DEFAULT_ACCOUNT


def check_account(account: str, option: str = "--account-id") -> str:
    if not ACCOUNT_RE.match(account):
        raise ProjectError(
            f"{option} {account!r} is not a 12-digit account id",
            f"pass 12 digits, e.g. {option} {DEFAULT_ACCOUNT}",
        )
    return account


def check_name(value: str, what: str, pattern: re.Pattern[str] = NAME_RE) -> str:
    if not pattern.match(value):
        raise ProjectError(
            f"{what} {value!r} is not allowed",
            "use 1-128 letters, digits, '_' or '-' (the manifest schema's pattern)",
        )
    return value


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def at(cls, path: Path) -> Project:
        """Open the project at ``path``; refuse a folder that is not one."""
        root = path.resolve()
        missing = [d for d in ("assets", "graphs", "packages") if not (root / d).is_dir()]
        if missing:
            raise ProjectError(
                f"{root} is not a project folder (missing {', '.join(m + '/' for m in missing)})",
                "run the command from the folder `panoptes app init-project` created, "
                "or pass --project-dir",
            )
        return cls(root)

    @property
    def assets_dir(self) -> Path:
        return self.root / "assets"

    @property
    def packages_dir(self) -> Path:
        return self.root / "packages"

    @property
    def graphs_dir(self) -> Path:
        return self.root / "graphs"

    def graph_folders(self) -> list[Path]:
        return sorted(p for p in self.graphs_dir.iterdir() if p.is_dir())

    def graph_files(self) -> list[Path]:
        """graph.json of every graph folder (panorama-cli only looked at the first)."""
        files = [d / "graph.json" for d in self.graph_folders() if (d / "graph.json").is_file()]
        if not files:
            raise ProjectError(
                f"{self.graphs_dir}: no graphs/<app>/graph.json found",
                "create the project with `panoptes app init-project` or add a graph.json",
            )
        return files

    def package_folders(self) -> list[Path]:
        return sorted(p for p in self.packages_dir.iterdir() if p.is_dir())

    def rel(self, path: Path) -> str:
        """Path shown to the user: relative to the project when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
