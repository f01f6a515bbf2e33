"""Service models: Panorama from our package data, everything else from botocore.

botocore stopped shipping Panorama's model (1.43.38), so the copy in ``data/`` is the
one source of truth for that API. The other services (s3, logs, cloudwatch) keep
coming from the installed botocore so they follow its updates.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from botocore.loaders import Loader
from botocore.model import ServiceModel

_DATA = Path(__file__).resolve().parent / "data"

#: Services whose models we ship ourselves; never looked up in botocore.
SHIPPED = frozenset(p.name for p in _DATA.iterdir() if p.is_dir())


def data_path() -> Path:
    """The folder to put on ``AWS_DATA_PATH`` so botocore clients know our services."""
    return _DATA


@cache
def _loader() -> Loader:
    return Loader(extra_search_paths=[str(_DATA)])


def _shipped_model(name: str) -> dict:
    # One API version per shipped service; take the newest folder if that changes.
    versions = sorted(p for p in (_DATA / name).iterdir() if p.is_dir())
    return json.loads((versions[-1] / "service-2.json").read_text(encoding="utf-8"))


@cache
def load_service_model(name: str) -> ServiceModel:
    """The botocore ``ServiceModel`` for ``name`` ("panorama", "s3", "logs", ...).

    Raises ``botocore.exceptions.UnknownServiceError`` for a service nobody knows.
    """
    if name in SHIPPED:
        return ServiceModel(_shipped_model(name), service_name=name)
    return ServiceModel(_loader().load_service_model(name, "service-2"), service_name=name)
