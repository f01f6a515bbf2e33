"""The two interfaces the HTTP side calls: who signed, and who answers.

The protocol layer (protocol/) authenticates a request with a `CredentialStore`,
parses it with the service model into (operation, params), and hands those to the
`ServiceBackend` registered for the service named in the SigV4 credential scope.
Backends return plain dicts shaped like the operation's output, or raise
`panoptes.cloud.errors.ServiceError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from panoptes.cloud.context import RequestContext

if TYPE_CHECKING:
    from panoptes.cloud.policy import Policy


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    account_id: str
    #: Who holds the key: "admin", a user name, a device id, or for a role session
    #: arn:aws:sts::ACCOUNT:assumed-role/ROLE/INSTANCE.
    principal: str
    enabled: bool = True
    #: Role sessions only: what the role allows (None: a long-lived key, full access),
    #: the SHA-256 (hex) of the session token every request must carry, and when the
    #: session ends.
    policy: Policy | None = None
    session_token_sha256: str | None = None
    expiration: datetime | None = None


class CredentialStore(Protocol):
    def lookup(self, access_key_id: str) -> Credential | None: ...


class ServiceBackend(Protocol):
    #: The botocore service name this backend answers ("panorama", "s3", "logs").
    service: str

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """Run one operation; params and result use the model's member names."""
        ...


def runs_inline(backend: ServiceBackend, operation: str) -> bool:
    """Whether ``operation`` may run on the event loop instead of a worker thread.

    A backend opts in with ``inline_operations``: short reads of bounded size (one
    resource, or one page paged in SQL) that take no locks. They are answered
    without the thread hand-off, which costs more than such a read itself; anything
    that may take long (writes, listings loaded whole) stays in the thread pool.
    """
    return operation in getattr(backend, "inline_operations", ())


@dataclass
class StaticCredentials:
    """A fixed set of keys, for tests and for seeding the admin key."""

    credentials: tuple[Credential, ...] = ()

    def lookup(self, access_key_id: str) -> Credential | None:
        return next((c for c in self.credentials if c.access_key_id == access_key_id), None)
