"""`panoptes up`: run the platform on one machine with its embedded defaults."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from panoptes import __version__

# One row per room, in the order the platform grows. Each later issue replaces its
# row's "not yet" with the service it starts.
COMPONENTS: list[tuple[str, str, str]] = [
    ("application format", "ready", "panoptes manifest validate GRAPH"),
    ("developer CLI", "ready", "panoptes app --help"),
    ("control plane (Panorama API)", "not in this build yet", "-"),
    ("device agent", "not in this build yet", "-"),
    ("web console", "not in this build yet", "-"),
]


def up() -> None:
    """Start Panoptes on this machine with embedded defaults (SQLite, local files).

    Today it reports what this build contains; services join as they land.

    Example:

        panoptes up
    """
    console = Console(highlight=False)
    table = Table(title=f"Panoptes {__version__} — embedded defaults")
    for column in ("component", "state", "try"):
        table.add_column(column)
    for row in COMPONENTS:
        table.add_row(*row)
    console.print(table)
