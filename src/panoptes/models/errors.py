"""Errors raised while importing, compiling or serving a model.

Every message names the problem and the fix, because the person reading it is
usually running `panoptes app add-raw-model` and has only the message to go on.
"""

from __future__ import annotations

# The extras a user installs for each optional converter. One place, so the
# messages and pyproject.toml cannot drift apart silently.
EXTRA_TORCH = "pip install 'panoptes[torch]'"
EXTRA_TENSORFLOW = "pip install 'panoptes[tensorflow]'"
EXTRA_FP16 = "pip install 'panoptes[fp16]'"


class ModelError(ValueError):
    """Base class: the model or its descriptor cannot be used as given."""


class ArchiveError(ModelError):
    """The model archive is unreadable or does not hold a usable model file."""


class UnsupportedFrameworkError(ModelError):
    """The framework or model format has no conversion route here."""


class DescriptorMismatchError(ModelError):
    """The descriptor's inputs (names, shapes, types) do not match the model."""


class MissingExtraError(ModelError, ImportError):
    """A converter needs an optional dependency that is not installed."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} needs an optional dependency that is not installed: {install}")
        self.install = install


class ModelInputError(ModelError):
    """A request to a model had a wrong input name, shape or dtype."""


class ModelServerError(RuntimeError):
    """The model server failed to start, died, or failed a request for another reason."""
