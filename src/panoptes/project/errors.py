"""The one exception panoptes.project raises for problems a user can fix."""

from __future__ import annotations


class ProjectError(Exception):
    """A mistake in the project folder or the command line, with the fix.

    The CLI prints ``message`` and ``hint`` and exits 1; it never shows a traceback
    for this class, so the message must name the file or field at fault.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.hint})" if self.hint else self.message
