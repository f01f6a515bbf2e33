"""`panoptes manifest`: check application manifests before anything is deployed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from panoptes.spec import (
    Problem,
    Report,
    detect_kind,
    read_json,
    resolve,
    validate_application,
    validate_document,
)

manifest_cli = typer.Typer(
    help="Validate Panorama manifests (graph, overrides, packages).", no_args_is_help=True
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def find_packages_dir(graph: Path) -> Path | None:
    """A project's packages/ folder: graphs/APP/graph.json -> packages/ (up to 3 levels)."""
    for parent in list(graph.resolve().parents)[:3]:
        if (parent / "packages").is_dir():
            return parent / "packages"
    return None


def print_problems(report: Report) -> None:
    for p in report.errors + report.warnings:
        err.print(_line(p))


def _line(p: Problem) -> str:
    # Manifests are full of [brackets] (JSON paths, arrays): escape them for rich.
    tag = "[red]error[/red]" if p.severity == "error" else "[yellow]warning[/yellow]"
    where = escape(f"{p.source}: ") if p.source else ""
    text = f"{tag} {where}[bold]{escape(p.path)}[/bold]: {escape(p.message)}"
    return text + (f"\n    [dim]fix:[/dim] {escape(p.hint)}" if p.hint else "")


@manifest_cli.command("validate")
def validate(
    graph: Path = typer.Argument(..., help="graph.json (or any one manifest file)."),
    overrides: Path | None = typer.Option(
        None, "--overrides", "-o", help="Overrides document used at deployment."
    ),
    packages_dir: Path | None = typer.Option(
        None,
        "--packages-dir",
        "-p",
        help="The project's packages/ folder (default: found beside graphs/).",
    ),
) -> None:
    """Check a manifest and report every problem with its JSON path and a fix.

    Exit 0 with a one-line summary when valid, 1 listing all problems otherwise.
    Given overrides, deploy-time duties become errors (mandatory overrides, a camera
    for every placeholder camera node).

    Example:

        panoptes manifest validate graphs/my-app/graph.json -o graphs/my-app/override.json
    """
    doc, report = read_json(graph)
    if doc is None:
        print_problems(report)
        raise typer.Exit(1)
    kind = detect_kind(doc)
    if kind != "nodeGraph":
        single = Report()
        single.extend(validate_document(doc), source=str(graph))
        print_problems(single)
        if not single.ok:
            _fail(single)
        what = kind or "document"
        out.print(f"[green]valid[/green] {graph}: {what}{_warn_note(single)}")
        return
    packages = packages_dir or find_packages_dir(graph)
    report = validate_application(graph, overrides, packages)
    print_problems(report)
    if not report.ok:
        _fail(report)
    plan = resolve(graph, overrides, packages)
    roles = Counter(n.role for n in plan.nodes.values())
    counts = ", ".join(f"{v} {k}" for k, v in sorted(roles.items()))
    streams = sum(len(n.cameras) for n in plan.by_role("camera"))
    out.print(
        f"[green]valid[/green] {graph}: {len(plan.nodes)} nodes ({counts}), "
        f"{len(plan.edges)} edges, {streams} camera stream(s), "
        f"{len(plan.routing_rules)} open port(s){_warn_note(report)}"
    )


def _warn_note(report: Report) -> str:
    n = len(report.warnings)
    return f"; {n} warning(s)" if n else ""


def _fail(report: Report) -> None:
    n, w = len(report.errors), len(report.warnings)
    err.print(f"[red]invalid[/red]: {n} error(s)" + (f", {w} warning(s)" if w else ""))
    raise typer.Exit(1)
