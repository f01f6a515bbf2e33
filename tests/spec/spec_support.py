"""Shared helpers for the tests/spec suite: locations, the published-schema oracle, path checks.

The oracle validates a document with the *published* Panorama JSON schemas
(``/work/shared/reference/manifest-schema``) through ``jsonschema``: it is the
reference our own validator must agree with on structure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from panoptes.spec import KINDS
from panoptes.spec.problems import format_path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
SPEC_EXAMPLES = FIXTURES / "spec_examples"
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
SCHEMA_DIR = SHARED_REFERENCE / "manifest-schema"
MANIFEST_FIXTURES = SHARED_REFERENCE / "manifest-fixtures"


def kind_of(doc: Any) -> str:
    """The document kind by its top-level key (descriptors have two possible keys)."""
    if isinstance(doc, dict):
        for key in doc:
            if key in KINDS:
                return key
        if "mlModelDescriptor" in doc or "runtimeDescriptor" in doc:
            return "assetDescriptor"
    raise ValueError(f"cannot tell the kind of {str(doc)[:80]}")


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _registry():
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append(
            (
                path.resolve().as_uri(),
                Resource.from_contents(contents, default_specification=DRAFT7),
            )
        )
    return Registry().with_resources(resources)


@cache
def _validator(kind: str):
    from jsonschema import Draft7Validator

    uri = (SCHEMA_DIR / "ver_2021-01-01" / f"{kind}.schema.json").resolve().as_uri()
    return Draft7Validator({"$ref": uri}, registry=_registry())


def schema_errors(doc: Any, kind: str | None = None) -> list[str]:
    """Messages of the published schema's errors (empty = valid), each prefixed by its path."""
    kind = kind or kind_of(doc)
    out = []
    for err in _validator(kind).iter_errors(doc):
        where = ".".join(str(p) for p in err.absolute_path) or "$"
        out.append(f"{where}: {err.message[:200]}")
    return out


def schema_available() -> bool:
    return SCHEMA_DIR.is_dir()


def paths_of(problems: Iterable[Any]) -> list[str]:
    return [p.path for p in problems]


def at_or_below(path: str, want: str) -> bool:
    """True when ``path`` is ``want`` or points inside it (``want.x`` / ``want[0]``)."""
    return path == want or path.startswith(want + ".") or path.startswith(want + "[")


def describe(report: Any) -> str:
    """A readable dump of a report for assertion messages."""
    lines = [f"  {p.severity}: {getattr(p, 'source', '')} {p.path}: {p.message}" for p in report]
    return "\n".join(lines) or "  (no problems)"


json_path = format_path  # the validator's own rendering is the contract under test


def schema_error_paths(doc: Any, kind: str | None = None) -> list[str]:
    """Paths of the published schema's errors, in the validator's path format."""
    kind = kind or kind_of(doc)
    return [json_path(err.absolute_path) for err in _validator(kind).iter_errors(doc)]
