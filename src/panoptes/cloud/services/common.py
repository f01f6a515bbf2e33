"""What every operation module shares: the call, ids and ARNs, pagination, errors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets as _random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db.models import Account, Tag
from panoptes.cloud.errors import ResourceNotFound, ValidationError

if TYPE_CHECKING:
    from panoptes.cloud.services.backend import Services

T = TypeVar("T")
DEFAULT_MAX_RESULTS = 25  # MaxSize25 in the model


@dataclass
class Call:
    """One operation being served: its transaction, the caller, and the services."""

    session: Session
    ctx: RequestContext
    env: Services

    @property
    def account(self) -> str:
        return self.ctx.account_id

    @property
    def now(self) -> Any:
        return self.ctx.now

    def arn(self, kind: str, resource_id: str) -> str:
        return arn(self.ctx.region, self.account, kind, resource_id)


def owned(call: Call, model: type[T], row_id: str) -> T | None:
    """The row with this id if it belongs to the caller's account, else None.

    Another account's resources do not exist for the caller: same answer as absent.
    """
    row = call.session.get(model, row_id)
    return row if row is not None and row.account_id == call.account else None  # type: ignore[attr-defined]


def get_owned(call: Call, model: type[T], row_id: str, resource_type: str) -> T:
    """`owned`, or ResourceNotFoundException naming the id and type."""
    row = owned(call, model, row_id)
    if row is None:
        raise ResourceNotFound(row_id, resource_type)
    return row


def new_id(prefix: str) -> str:
    """AWS's form: ``device-`` + 26 lowercase base32 characters (128 random bits)."""
    raw = base64.b32encode(_random.token_bytes(16)).decode().rstrip("=").lower()
    return f"{prefix}-{raw}"


def arn(region: str, account: str, kind: str, resource_id: str) -> str:
    return f"arn:aws:panorama:{region}:{account}:{kind}/{resource_id}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def invalid(field: str, message: str) -> ValidationError:
    """A ValidationException naming the field, as botocore shows it to users."""
    return ValidationError(
        f"{field}: {message}",
        fields=[{"Name": field, "Message": message}],
        reason="FIELD_VALIDATION_FAILED",
    )


def ensure_account(session: Session, account_id: str, now: Any) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        account = Account(id=account_id, created=now)
        session.add(account)
        session.flush()
    return account


def lock_account(call: Call) -> None:
    """Serialize quota checks of one account (row lock on PostgreSQL)."""
    ensure_account(call.session, call.account, call.now)
    call.session.execute(
        select(Account.id).where(Account.id == call.account).with_for_update()
    ).first()


# --- tags -----------------------------------------------------------------------------


_TAGS_OF = select(Tag.key, Tag.value).where(Tag.resource_arn == bindparam("arn"))


def tags_of(session: Session, resource_arn: str) -> dict[str, str]:
    return {key: value for key, value in session.execute(_TAGS_OF, {"arn": resource_arn})}


_TAGS_OF_MANY = select(Tag.resource_arn, Tag.key, Tag.value).where(
    Tag.resource_arn.in_(bindparam("arns", expanding=True))
)


def tags_of_many(session: Session, resource_arns: Sequence[str]) -> dict[str, dict[str, str]]:
    """``tags_of`` for many resources in one query (a page of a listing)."""
    out: dict[str, dict[str, str]] = {arn: {} for arn in resource_arns}
    if resource_arns:
        rows = session.execute(_TAGS_OF_MANY, {"arns": list(resource_arns)})
        for resource_arn, key, value in rows:
            out[resource_arn][key] = value
    return out


def set_tags(call: Call, resource_arn: str, tags: dict[str, str] | None) -> None:
    if not tags:
        return
    limit = call.env.settings.limits.tags_per_resource
    for key in tags:
        if key.lower().startswith("aws:"):
            raise invalid("Tags", f"tag key {key!r}: the aws: prefix is reserved")
    current = tags_of(call.session, resource_arn)
    if len(set(current) | set(tags)) > limit:
        raise invalid("Tags", f"a resource takes at most {limit} tags")
    for key, value in tags.items():
        row = call.session.get(Tag, (resource_arn, key))
        if row is None:
            call.session.add(Tag(resource_arn=resource_arn, key=key, value=value))
        else:
            row.value = value
    call.session.flush()


def drop_tags(session: Session, resource_arn: str) -> None:
    for row in session.scalars(select(Tag).where(Tag.resource_arn == resource_arn)):
        session.delete(row)


# --- pagination -----------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str | None

    def out(self, name: str, render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {name: [render(i) for i in self.items]}
        if self.next_token:
            result["NextToken"] = self.next_token
        return result


def _scope_digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]


def paginate(
    items: Sequence[T],
    key: Callable[[T], tuple[str, ...]],
    params: dict[str, Any],
    scope: str,
    *,
    descending: bool = False,
) -> Page:
    """One page of ``items`` in ``key`` order, resuming after the token's last key.

    The token is opaque to clients: base64 of the last key seen and a digest of the
    listing (operation + filters), so a token from another listing is refused.
    Resuming by key instead of by offset keeps pages stable while rows come and go.
    """
    max_results = max_results_of(params)
    ordered = sorted(items, key=key, reverse=descending)
    last = resume_key(params, scope)
    if last is not None:
        if descending:
            ordered = [i for i in ordered if key(i) < last]
        else:
            ordered = [i for i in ordered if key(i) > last]
    page = ordered[:max_results]
    next_token = None
    if len(ordered) > max_results:
        next_token = make_token(key(page[-1]), scope)
    return Page(page, next_token)


def newest_first(
    rows: Sequence[T],
    params: dict[str, Any],
    scope: str,
    key: str,
    summary: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """A List*Jobs page: ``rows`` (with ``created`` and ``id``) newest first, summarised."""
    page = paginate(rows, lambda r: (iso(r.created), r.id), params, scope, descending=True)  # type: ignore[attr-defined]
    return page.out(key, summary)


def max_results_of(params: dict[str, Any]) -> int:
    return params.get("MaxResults") or DEFAULT_MAX_RESULTS


def resume_key(params: dict[str, Any], scope: str) -> tuple[str, ...] | None:
    """The last key of the previous page (from NextToken), for paging in SQL."""
    token = params.get("NextToken")
    return _decode_token(token, scope) if token else None


def make_token(last: Sequence[str], scope: str) -> str:
    """The NextToken that resumes a listing (``scope``) after the key ``last``."""
    body = json.dumps({"k": list(last), "s": _scope_digest(scope)})
    return base64.urlsafe_b64encode(body.encode()).decode()


def _decode_token(token: str, scope: str) -> tuple[str, ...]:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        last = body["k"]
        ok = body["s"] == _scope_digest(scope) and isinstance(last, list)
    except (binascii.Error, ValueError, KeyError, TypeError):
        ok, last = False, None
    if not ok or not all(isinstance(p, str) for p in last):
        raise invalid("NextToken", "is not a token this listing returned")
    return tuple(last)


def iso(value: Any) -> str:
    """A sortable text form of a datetime (all ours are UTC)."""
    return value.isoformat() if value is not None else ""
