"""An application's role credentials on the device: fetched, cached, renewed early.

The agent builds one `RoleCredentialsProvider` per application instance around a
``fetch`` that asks the control plane (GET /device/v1/credentials/{instance}) and
hands it to the runtime's CredentialsEndpoint. botocore in the app refreshes its
container credentials shortly before they expire; the provider makes sure what it
is then given has most of its hour left: credentials are fetched anew once they are
within ``refresh_before`` (5 minutes) of expiring. ``fetch`` returning None means
the instance has no role: the endpoint answers 404 and boto3 raises its credentials
error, as on an appliance deployed without a role.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from panoptes import link

Fetch = Callable[[], "dict | None"]

#: Renew this long before the current credentials expire.
REFRESH_BEFORE = timedelta(minutes=5)


FETCH_TIMEOUT = 10.0


def device_endpoint_fetch(device_endpoint: str, context: ssl.SSLContext, instance_id: str) -> Fetch:
    """A Fetch over the device endpoint (mutual TLS): GET link.DEVICE_HTTP_CREDENTIALS
    /{instance_id}. 404 (no role) -> None; anything else that is not 200 raises OSError,
    which the runtime's endpoint turns into 503 (botocore retries later)."""
    url = f"{device_endpoint.rstrip('/')}{link.DEVICE_HTTP_CREDENTIALS}/{instance_id}"

    def fetch() -> dict | None:
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT, context=context) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            why = f"the control plane answered {exc.code} for the role credentials"
            raise OSError(why) from None

    return fetch


def expiration_of(credentials: dict) -> datetime:
    """The ``Expiration`` of container credentials ("2026-11-25T15:00:00Z") as UTC."""
    text = str(credentials["Expiration"]).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class RoleCredentialsProvider:
    """Callable: the current credentials (a dict botocore reads) or None (no role)."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        refresh_before: timedelta = REFRESH_BEFORE,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._now = now
        self._cached: dict | None = None
        self._lock = threading.Lock()

    def __call__(self) -> dict | None:
        with self._lock:
            if self._cached is None or self._stale(self._cached):
                fresh = self._fetch()
                # A missing role is not cached: a redeploy may add one.
                self._cached = dict(fresh) if fresh is not None else None
            return dict(self._cached) if self._cached is not None else None

    def _stale(self, credentials: dict) -> bool:
        return self._now() >= expiration_of(credentials) - self._refresh_before
