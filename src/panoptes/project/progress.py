"""How long-running steps report progress without knowing who displays it.

panoptes.project never imports a UI library: the CLI passes an object with a
``task`` method (backed by rich) and library callers get ``NO_PROGRESS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def task(self, label: str, total: int | None = None) -> AbstractContextManager[Advance]:
        """Open a step; the yielded function advances it by n units (bytes, files)."""
        ...


class _NoProgress:
    @contextmanager
    def task(self, label: str, total: int | None = None) -> Iterator[Advance]:
        yield lambda n: None


NO_PROGRESS: Progress = _NoProgress()
