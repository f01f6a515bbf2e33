"""What a service handler knows about the request it serves (never HTTP details)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class RequestContext:
    account_id: str  # 12 digits; the account the access key belongs to
    region: str  # from the SigV4 credential scope, e.g. "us-east-1"
    access_key_id: str
    principal: str  # the key's owner (user name or device id), for audit and tags
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
