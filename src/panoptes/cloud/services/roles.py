"""Application roles: the IAM role subset, and the short-lived credentials of a role.

`IamBackend` answers the IAM operations that role scripts use (CreateRole, GetRole,
ListRoles, DeleteRole, PutRolePolicy, GetRolePolicy, ListRolePolicies,
DeleteRolePolicy) with IAM's own shapes and error codes, so ``aws iam create-role``
and ``put-role-policy`` work unchanged. Policy documents are checked by
panoptes.cloud.policy when they are put, so a role never holds one that cannot be
evaluated. The trust (assume-role) document is kept and returned, not enforced:
only the device an instance runs on can ask for that instance's credentials.

`issue_role_credentials` is what the device endpoint calls for an application
instance: a fresh session (ASIA key, secret, token) valid for one hour, bound to the
role named by the instance's RuntimeRoleArn. DbCredentialStore looks sessions up and
gives the protocol layer the role's policy with them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets as _random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db import Database
from panoptes.cloud.db.models import ApplicationInstance
from panoptes.cloud.db.roles_models import Role, RolePolicy, RoleSession
from panoptes.cloud.errors import InternalError, ResourceNotFound, ServiceError
from panoptes.cloud.policy import PolicyError, parse_policy
from panoptes.cloud.services.common import ensure_account
from panoptes.cloud.services.secrets import Secrets

log = logging.getLogger(__name__)

#: How long one set of role credentials lives (the appliance's sessions last an hour).
SESSION_LIFETIME = timedelta(hours=1)
EXPIRED_KEPT = timedelta(days=1)
_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_PATH = re.compile(r"/([\x21-\x7e]{0,510}/)?")
_ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})")
_MAX_ITEMS = 100


class NoRole(ServiceError):
    """The instance has no usable application role: no credentials (device endpoint: 404)."""

    default_status = 404

    def __init__(self, message: str) -> None:
        super().__init__("NoRole", message)


def _error(code: str, message: str) -> ServiceError:
    # IAM's model gives each code its HTTP status (NoSuchEntity 404, ...).
    return ServiceError(code, message)


def _no_such_role(name: str) -> ServiceError:
    return _error("NoSuchEntityException", f"The role with name {name} cannot be found.")


def _invalid(message: str) -> ServiceError:
    return _error("InvalidInputException", message)


def _random_id(prefix: str, length: int) -> str:
    return prefix + base64.b32encode(_random.token_bytes(15)).decode()[:length]


def role_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


def session_principal(account: str, role: str, instance_id: str) -> str:
    """The caller as IAM names a role session: arn:aws:sts::ACCOUNT:assumed-role/ROLE/ID."""
    return f"arn:aws:sts::{account}:assumed-role/{role}/{instance_id}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_secret_purpose(access_key_id: str) -> str:
    return f"session-key:{access_key_id}"


# --- the IAM operations ----------------------------------------------------------------


def _check_name(value: Any, field: str, pattern: re.Pattern[str] = _NAME) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _error(
            "ValidationError",
            f"1 validation error detected: Value {value!r} at '{field}' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {pattern.pattern}",
        )
    return value


def _role(session: Session, account: str, name: str) -> Role:
    row = session.scalars(
        select(Role).where(Role.account_id == account, Role.name == name)
    ).one_or_none()
    if row is None:
        raise _no_such_role(name)
    return row


def _role_shape(row: Role) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Path": row.path,
        "RoleName": row.name,
        "RoleId": row.id,
        "Arn": role_arn(row.account_id, row.path, row.name),
        "CreateDate": row.created,
        # IAM returns policy documents URL-encoded; botocore decodes them.
        "AssumeRolePolicyDocument": quote(row.assume_role_policy, safe=""),
        "MaxSessionDuration": row.max_session_duration,
    }
    if row.description:
        shape["Description"] = row.description
    return shape


def _malformed(exc: PolicyError) -> ServiceError:
    return _error("MalformedPolicyDocumentException", f"Syntax errors in policy: {exc}")


def create_role(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    name = _check_name(p.get("RoleName"), "roleName")
    path = p.get("Path") or "/"
    if not _PATH.fullmatch(path):
        raise _invalid(f"The specified value for path is invalid: {path!r} (use / or /a/b/)")
    trust = p.get("AssumeRolePolicyDocument") or ""
    try:
        if not isinstance(json.loads(trust), dict):
            raise ValueError("not an object")
    except ValueError:
        raise _error(
            "MalformedPolicyDocumentException",
            "AssumeRolePolicyDocument must be a JSON policy document "
            '(for example {"Version": "2012-10-17", "Statement": [...]})',
        ) from None
    exists = s.scalars(
        select(Role.id).where(Role.account_id == ctx.account_id, Role.name == name)
    ).first()
    if exists is not None:
        raise _error("EntityAlreadyExistsException", f"Role with name {name} already exists.")
    ensure_account(s, ctx.account_id, ctx.now)
    row = Role(
        id=_random_id("AROA", 17),
        account_id=ctx.account_id,
        name=name,
        path=path,
        description=p.get("Description"),
        assume_role_policy=trust,
        max_session_duration=p.get("MaxSessionDuration") or 3600,
        created=ctx.now,
    )
    s.add(row)
    s.flush()
    return {"Role": _role_shape(row)}


def get_role(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"Role": _role_shape(_role(s, ctx.account_id, p["RoleName"]))}


def _page(names: list[str], p: dict[str, Any]) -> tuple[int, int]:
    """(start, end) of the page a Marker/MaxItems pair asks for, in a sorted list."""
    start = 0
    if p.get("Marker"):
        start = next((i for i, n in enumerate(names) if n > p["Marker"]), len(names))
    size = min(max(int(p.get("MaxItems") or _MAX_ITEMS), 1), 1000)
    return start, min(start + size, len(names))


def _paged(key: str, items: list[Any], names: list[str], p: dict[str, Any]) -> dict[str, Any]:
    start, end = _page(names, p)
    result: dict[str, Any] = {key: items[start:end], "IsTruncated": end < len(names)}
    if end < len(names):
        result["Marker"] = names[end - 1]
    return result


def list_roles(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = s.scalars(
        select(Role).where(Role.account_id == ctx.account_id).order_by(Role.name)
    ).all()
    prefix = p.get("PathPrefix") or "/"
    rows = [r for r in rows if r.path.startswith(prefix)]
    return _paged("Roles", [_role_shape(r) for r in rows], [r.name for r in rows], p)


def delete_role(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _role(s, ctx.account_id, p["RoleName"])
    if s.scalars(select(RolePolicy.name).where(RolePolicy.role_id == row.id)).first():
        raise _error("DeleteConflictException", "Cannot delete entity, must delete policies first.")
    # Its sessions go with it (ON DELETE CASCADE): running apps lose access at once.
    s.execute(delete(RoleSession).where(RoleSession.role_id == row.id))
    s.delete(row)
    return {}


def put_role_policy(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _role(s, ctx.account_id, p["RoleName"])
    name = _check_name(p.get("PolicyName"), "policyName", _POLICY_NAME)
    document = p.get("PolicyDocument") or ""
    try:
        parse_policy(document)
    except PolicyError as exc:
        raise _malformed(exc) from None
    existing = s.get(RolePolicy, (row.id, name))
    if existing is None:
        s.add(RolePolicy(role_id=row.id, name=name, document=document))
    else:
        existing.document = document
    return {}


def get_role_policy(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _role(s, ctx.account_id, p["RoleName"])
    policy = s.get(RolePolicy, (row.id, p["PolicyName"]))
    if policy is None:
        raise _error(
            "NoSuchEntityException", f"The role policy with name {p['PolicyName']} cannot be found."
        )
    return {
        "RoleName": row.name,
        "PolicyName": policy.name,
        "PolicyDocument": quote(policy.document, safe=""),
    }


def list_role_policies(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _role(s, ctx.account_id, p["RoleName"])
    names = list(
        s.scalars(
            select(RolePolicy.name).where(RolePolicy.role_id == row.id).order_by(RolePolicy.name)
        )
    )
    return _paged("PolicyNames", names, names, p)


def delete_role_policy(s: Session, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _role(s, ctx.account_id, p["RoleName"])
    policy = s.get(RolePolicy, (row.id, p["PolicyName"]))
    if policy is None:
        raise _error(
            "NoSuchEntityException", f"The role policy with name {p['PolicyName']} cannot be found."
        )
    s.delete(policy)
    return {}


OPERATIONS = {
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
    "PutRolePolicy": put_role_policy,
    "GetRolePolicy": get_role_policy,
    "ListRolePolicies": list_role_policies,
    "DeleteRolePolicy": delete_role_policy,
}


class IamBackend:
    """botocore's ``iam`` service, the role operations; each runs in one transaction."""

    service = "iam"

    def __init__(self, db: Database) -> None:
        self.db = db

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        func = OPERATIONS.get(operation)
        if func is None:
            raise _error(
                "InvalidAction",
                f"{operation} is not supported here; Panoptes serves the role operations "
                f"({', '.join(sorted(OPERATIONS))})",
            )
        reads = operation.startswith(("Get", "List"))
        try:
            with self.db.reading() if reads else self.db.transaction() as session:
                return func(session, ctx, params)
        except ServiceError:
            raise
        except Exception:
            log.exception("iam %s failed (request %s)", operation, ctx.request_id)
            raise InternalError(f"internal error (request {ctx.request_id})") from None


# --- role sessions ---------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    """Who a role session belongs to (for iot-data's topic namespace and audit)."""

    account_id: str
    device_id: str
    instance_id: str
    role_name: str


def session_of(db: Database, access_key_id: str) -> SessionInfo | None:
    with db.reading() as s:
        row = s.execute(
            select(
                RoleSession.account_id, RoleSession.device_id, RoleSession.instance_id, Role.name
            )
            .join(Role, Role.id == RoleSession.role_id)
            .where(RoleSession.access_key_id == access_key_id)
        ).first()
    return SessionInfo(*row) if row is not None else None


def _instance_role(s: Session, device_id: str, instance_id: str) -> Role:
    instance = s.get(ApplicationInstance, instance_id)
    if instance is None or instance.device_id != device_id:
        raise ResourceNotFound(
            instance_id,
            "application-instance",
            f"application instance {instance_id} does not run on device {device_id}",
        )
    arn = instance.runtime_role_arn
    if not arn:
        raise NoRole(
            f"application instance {instance_id} was deployed without a RuntimeRoleArn: "
            "it has no application role and gets no AWS credentials"
        )
    match = _ROLE_ARN.fullmatch(arn)
    if match is None or match.group(1) != instance.account_id:
        raise NoRole(
            f"application instance {instance_id}: RuntimeRoleArn {arn} does not name a role "
            f"of account {instance.account_id} (arn:aws:iam::{instance.account_id}:role/NAME)"
        )
    role = s.scalars(
        select(Role).where(Role.account_id == instance.account_id, Role.name == match.group(2))
    ).one_or_none()
    if role is None:
        raise NoRole(
            f"application instance {instance_id}: the role {match.group(2)} named by its "
            "RuntimeRoleArn does not exist; create it (panoptes roles create) and redeploy"
        )
    return role


def issue_role_credentials(
    env: Any, device_id: str, instance_id: str, now: datetime
) -> dict[str, str]:
    """Fresh credentials of the instance's role, for the device that runs it.

    ``env`` is the control plane's Services (db, secrets). Raises NoRole when the
    instance has no (existing) role, ResourceNotFound when it does not run on
    ``device_id``. The answer is the container-credentials shape botocore reads.
    """
    db: Database = env.db
    secrets: Secrets = env.secrets
    key_id = _random_id("ASIA", 16)
    secret = base64.b64encode(_random.token_bytes(30)).decode()[:40]
    token = base64.b64encode(_random.token_bytes(96)).decode()
    expiration = now + SESSION_LIFETIME
    with db.transaction() as s:
        role = _instance_role(s, device_id, instance_id)
        # Expired sessions are kept a day, so their late users hear "expired" rather
        # than "unknown key"; then they go, as new ones come.
        s.execute(delete(RoleSession).where(RoleSession.expiration < now - EXPIRED_KEPT))
        s.add(
            RoleSession(
                access_key_id=key_id,
                account_id=role.account_id,
                role_id=role.id,
                device_id=device_id,
                instance_id=instance_id,
                secret_encrypted=secrets.encrypt(secret, session_secret_purpose(key_id)),
                token_sha256=token_digest(token),
                expiration=expiration,
                created=now,
            )
        )
    return {
        "AccessKeyId": key_id,
        "SecretAccessKey": secret,
        "Token": token,
        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RoleArn": role_arn(role.account_id, role.path, role.name),
    }


def device_credentials_response(
    env: Any, device_id: str, instance_id: str, now: datetime
) -> tuple[int, dict[str, str]]:
    """(HTTP status, JSON body) for the device endpoint's GET /device/v1/credentials/{id}.

    200 with the credentials; 404 when the instance has no role (the agent then
    serves 404 to the app, whose boto3 raises its credentials error) or does not run
    on this device (no hint that it exists elsewhere).
    """
    try:
        return 200, issue_role_credentials(env, device_id, instance_id, now)
    except (NoRole, ResourceNotFound) as exc:
        return 404, {"code": exc.code, "message": exc.message}
