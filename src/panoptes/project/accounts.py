"""import-application: move a project to another account id.

The account appears in package folder names (``ACCOUNT-NAME-VERSION``) and in
the ``ACCOUNT::...`` references of graph.json and override files. We parse the
JSON and rewrite only those fields; a blind text replace (panorama-cli) would
also change a parameter value or description that happens to hold the digits.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes.project.errors import ProjectError
from panoptes.project.files import read_json, write_json
from panoptes.project.layout import Project, check_account

FOLDER_RE = re.compile(r"^(\d{12})-(.+)$")
REF_RE = re.compile(r"^(\d{12})::")
TOP_KEYS = ("nodeGraph", "nodeGraphOverrides")


@dataclass
class Imported:
    old: str | None
    new: str
    folders: list[tuple[str, str]] = field(default_factory=list)  # (old name, new name)
    files: list[Path] = field(default_factory=list)  # rewritten JSON files
    notes: list[str] = field(default_factory=list)


def _refs(body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(object, key) pairs of every field that carries an account: package names
    and node interfaces, in graphs and override files alike."""
    out = []
    for key, field_name in (("packages", "name"), ("nodes", "interface")):
        items = body.get(key)
        if isinstance(items, list):
            out += [
                (item, field_name)
                for item in items
                if isinstance(item, dict) and isinstance(item.get(field_name), str)
            ]
    return out


def _graph_documents(project: Project) -> tuple[dict[Path, Any], list[str]]:
    """Every graph/override JSON in every graph folder, parsed up front so a syntax
    error stops the import before anything is renamed."""
    docs: dict[Path, Any] = {}
    notes: list[str] = []
    for folder in project.graph_folders():
        for path in sorted(folder.glob("*.json")):
            doc = read_json(path, "graph file")
            if isinstance(doc, dict) and any(isinstance(doc.get(k), dict) for k in TOP_KEYS):
                docs[path] = doc
            else:
                notes.append(f"{project.rel(path)}: not a graph or override file; left as is")
    return docs, notes


def import_application(project: Project, new: str, old: str | None = None) -> Imported:
    check_account(new)
    if old is not None:
        check_account(old, "--from-account")
    docs, notes = _graph_documents(project)
    folders = [
        (f.name, m.group(1)) for f in project.package_folders() if (m := FOLDER_RE.match(f.name))
    ]
    found = {acct for _, acct in folders}
    for doc in docs.values():
        for key in TOP_KEYS:
            if isinstance(doc.get(key), dict):
                for item, fname in _refs(doc[key]):
                    if m := REF_RE.match(item[fname]):
                        found.add(m.group(1))
    if old is None:
        if len(found) > 1:
            raise ProjectError(
                f"the project carries several account ids: {', '.join(sorted(found))}",
                "say which one to replace with --from-account",
            )
        old = next(iter(found), None)
    result = Imported(old, new, notes=notes)
    if old is None:
        result.notes.append("no account id found in package folders or graphs; nothing to do")
        return result
    if old == new:
        result.notes.append(f"the project already uses account {new}; nothing to do")
        return result

    renames = [(name, new + name[len(old) :]) for name, acct in folders if acct == old]
    for _, target in renames:
        if (project.packages_dir / target).exists():
            raise ProjectError(
                f"packages/{target} already exists; renaming onto it would merge two packages",
                "remove or rename one of them first",
            )
    prefix = f"{old}::"
    for path, doc in docs.items():
        before = copy.deepcopy(doc)
        for key in TOP_KEYS:
            if isinstance(doc.get(key), dict):
                for item, fname in _refs(doc[key]):
                    if item[fname].startswith(prefix):
                        item[fname] = f"{new}::{item[fname][len(prefix) :]}"
        if doc != before:
            result.files.append(path)
    # JSON first (each file atomically), then the folders (each one rename).
    for path in result.files:
        write_json(path, docs[path])
    for name, target in renames:
        (project.packages_dir / name).rename(project.packages_dir / target)
        result.folders.append((name, target))
    return result
