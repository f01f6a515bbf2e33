"""Fixtures for the Panorama services: a real database (SQLite and PostgreSQL), an
in-memory object store, and `api` — PanoramaBackend.handle with a settable clock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from memory_store import MemoryStore
from svc_constants import ACCOUNT, REGION, T0

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db import Database
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services import Limits, PanoramaBackend, Secrets, Settings
from panoptes.cloud.services.device_view import DeviceView


class Api:
    """Calls PanoramaBackend.handle as the protocol layer would, with a settable clock."""

    def __init__(self, backend: PanoramaBackend, store: MemoryStore) -> None:
        self.backend, self.store = backend, store
        self.now = T0
        self.account = ACCOUNT
        self.view = DeviceView(backend.env)

    def __call__(self, operation: str, **params: Any) -> dict[str, Any]:
        ctx = RequestContext(
            account_id=self.account,
            region=REGION,
            access_key_id="AKIATESTTESTTESTTEST",
            principal="admin",
            now=self.now,
        )
        result = self.backend.handle(operation, ctx, params)
        json.dumps(result, default=_jsonable)  # outputs must be serializable data
        return result

    def fails(self, code: str, operation: str, **params: Any) -> ServiceError:
        with pytest.raises(ServiceError) as info:
            self(operation, **params)
        assert info.value.code == code, f"{info.value.code}: {info.value.message}"
        return info.value

    def tick(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    # -- common journeys -----------------------------------------------------------

    def provision(self, name: str = "my-appliance", online: bool = True) -> str:
        out = self("ProvisionDevice", Name=name)
        if online:
            self.make_online(out["DeviceId"], out["Certificates"])
        return out["DeviceId"]

    def publish_software(self, version: str) -> None:
        """A software image in the bucket, as `panoptes software publish` leaves it."""
        from panoptes.cloud.services import software

        self.store.create_bucket(software.BUCKET)
        self.store.put(software.BUCKET, f"{version}/panoptes-{version}-py3-none-any.whl", b"PK")

    def make_online(self, device_id: str, archive: bytes) -> str:
        from device_helpers import csr_pem, read_archive

        token = read_archive(archive)["provisioning.json"]["ProvisioningCredential"]["Token"]
        cert = self.view.exchange_provisioning_credential(token, csr_pem(), self.now)
        self.view.heartbeat(device_id, self.now, current_software="0.1.0")
        return cert


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        assert value.tzinfo is not None, "timestamps must be aware"
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value))


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def settings(tmp_path: Path, limits: Limits) -> Settings:
    return Settings(data_dir=tmp_path / "data", limits=limits)


@pytest.fixture
def api(db: Database, store: MemoryStore, settings: Settings) -> Api:
    secrets = Secrets(b"k" * 32)
    return Api(PanoramaBackend(db, store, settings, secrets), store)


@pytest.fixture
def low_limits() -> Limits:
    return replace(
        Limits(),
        devices=2,
        packages=2,
        versions_per_package=2,
        application_instances_per_device=1,
        camera_streams_per_application=1,
        deployments_per_device_per_day=2,
        tags_per_resource=3,
    )
