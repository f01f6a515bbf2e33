"""Problems found in manifests: where (a JSON path), what, and how to fix it.

Every check in panoptes.spec reports through a `Report` instead of raising, so a
user sees every mistake of a document in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
PathPart = str | int


def format_path(parts: Iterable[PathPart]) -> str:
    """Render a path the way users read JSON: ``nodeGraph.edges[2].consumer``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "$"


@dataclass(frozen=True)
class Problem:
    """One finding. ``path`` points into the document named by ``source``."""

    path: str
    message: str
    hint: str = ""
    severity: Severity = "error"
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.source else self.path
        text = f"{where}: {self.message}"
        return f"{text} (fix: {self.hint})" if self.hint else text


@dataclass
class Report:
    """The findings of one validation run, errors and warnings together."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, path: Iterable[PathPart] | str, message: str, hint: str = "") -> None:
        self._add(path, message, hint, "error")

    def warning(self, path: Iterable[PathPart] | str, message: str, hint: str = "") -> None:
        self._add(path, message, hint, "warning")

    def _add(self, path: Iterable[PathPart] | str, message: str, hint: str, sev: Severity) -> None:
        text = path if isinstance(path, str) else format_path(path)
        self.problems.append(Problem(text, message, hint, sev))

    def extend(self, other: Report | Iterable[Problem], source: str | None = None) -> None:
        items = other.problems if isinstance(other, Report) else list(other)
        for p in items:
            if source is not None and not p.source:
                p = Problem(p.path, p.message, p.hint, p.severity, source)
            self.problems.append(p)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings do not block a deployment)."""
        return not self.errors

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def __len__(self) -> int:
        return len(self.problems)

    def raise_for_errors(self, what: str = "manifest") -> None:
        if not self.ok:
            raise ManifestError(what, self)


class ManifestError(ValueError):
    """Raised by the parse/resolve entry points when a document has errors."""

    def __init__(self, what: str, report: Report) -> None:
        self.report = report
        lines = "\n".join(f"  - {p}" for p in report.errors)
        super().__init__(f"{what} is invalid ({len(report.errors)} error(s)):\n{lines}")
