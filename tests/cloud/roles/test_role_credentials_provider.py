"""The device side of role credentials: the provider renews 5 minutes before expiry,
and the runtime's credentials endpoint serves what it provides to botocore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest
from botocore.credentials import ContainerProvider

from panoptes.agent.role_credentials import RoleCredentialsProvider
from panoptes.runtime.services import CredentialsEndpoint

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


class FakeControlPlane:
    """Hands out numbered one-hour credentials, as issue_role_credentials does."""

    def __init__(self, clock: list[datetime], role: bool = True) -> None:
        self.clock, self.role, self.issued = clock, role, 0

    def __call__(self) -> dict | None:
        if not self.role:
            return None
        self.issued += 1
        expires = self.clock[0] + timedelta(hours=1)
        return {
            "AccessKeyId": f"ASIAKEY{self.issued:013d}",
            "SecretAccessKey": "s" * 40,
            "Token": f"token-{self.issued}",
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def test_credentials_are_cached_and_renewed_five_minutes_before_expiry() -> None:
    clock = [T0]
    plane = FakeControlPlane(clock)
    provider = RoleCredentialsProvider(plane, now=lambda: clock[0])
    first = provider()
    assert first is not None and first["Token"] == "token-1"
    clock[0] = T0 + timedelta(minutes=54, seconds=59)
    assert provider()["Token"] == "token-1"  # 5 min 1 s left: still good
    assert plane.issued == 1
    clock[0] = T0 + timedelta(minutes=55)
    assert provider()["Token"] == "token-2"
    assert plane.issued == 2
    clock[0] = T0 + timedelta(minutes=100)
    assert provider()["Token"] == "token-2"  # the new ones expire at 1:55


def test_no_role_is_not_cached() -> None:
    clock = [T0]
    plane = FakeControlPlane(clock, role=False)
    provider = RoleCredentialsProvider(plane, now=lambda: clock[0])
    assert provider() is None
    plane.role = True  # redeployed with a role
    assert provider()["Token"] == "token-1"


def _load(url: str):
    return ContainerProvider(environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": url}).load()


def test_botocore_reads_the_provider_through_the_endpoint() -> None:
    clock = [datetime.now(UTC)]
    endpoint = CredentialsEndpoint(RoleCredentialsProvider(FakeControlPlane(clock)))
    try:
        frozen = _load(endpoint.url).get_frozen_credentials()
        assert frozen.access_key == "ASIAKEY0000000000001"
        assert frozen.token == "token-1"
    finally:
        endpoint.close()


def test_without_a_role_botocore_raises_its_credentials_error() -> None:
    endpoint = CredentialsEndpoint(RoleCredentialsProvider(FakeControlPlane([T0], role=False)))
    try:
        with pytest.raises(botocore.exceptions.CredentialRetrievalError):
            _load(endpoint.url)
    finally:
        endpoint.close()


def test_a_failing_fetch_is_a_retryable_error_not_a_crash() -> None:
    def unreachable() -> dict:
        raise ConnectionRefusedError("control plane unreachable")

    endpoint = CredentialsEndpoint(RoleCredentialsProvider(unreachable))
    try:
        with pytest.raises(botocore.exceptions.CredentialRetrievalError):
            _load(endpoint.url)
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(endpoint.url, timeout=10)
        assert caught.value.code == 503
    finally:
        endpoint.close()
