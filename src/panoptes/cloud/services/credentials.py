"""Access keys in the database, and the admin key a fresh install starts with.

Secrets are encrypted with the master key (secrets.py); `DbCredentialStore` is the
CredentialStore the protocol layer verifies signatures with. `bootstrap_admin`
runs at start: it creates the admin key once (or takes PANOPTES_ADMIN_ACCESS_KEY_ID
and PANOPTES_ADMIN_SECRET_ACCESS_KEY from the environment) and writes the AWS
shared-credentials file DATA_DIR/credentials (profile ``panoptes``, mode 0600).
"""

from __future__ import annotations

import base64
import configparser
import io
import os
import secrets as _random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import bindparam, select

from panoptes.cloud.backend import Credential
from panoptes.cloud.db import Database
from panoptes.cloud.db.models import AccessKey, Account
from panoptes.cloud.db.roles_models import Role, RolePolicy, RoleSession
from panoptes.cloud.policy import parse_policies
from panoptes.cloud.services.common import ensure_account
from panoptes.cloud.services.roles import session_principal, session_secret_purpose
from panoptes.cloud.services.secrets import Secrets
from panoptes.settings import DEFAULT_REGION, PROFILE, credentials_path

ADMIN = "admin"
KEY_ID_ENV = "PANOPTES_ADMIN_ACCESS_KEY_ID"
SECRET_ENV = "PANOPTES_ADMIN_SECRET_ACCESS_KEY"
ACCOUNT_ENV = "PANOPTES_ACCOUNT_ID"


def _purpose(access_key_id: str) -> str:
    return f"access-key:{access_key_id}"


def new_access_key() -> tuple[str, str]:
    """AWS-shaped keys: ``AKIA`` + 16 base32 characters, and a 40-character secret."""
    key_id = "AKIA" + base64.b32encode(_random.token_bytes(10)).decode()[:16]
    secret = base64.b64encode(_random.token_bytes(30)).decode()[:40]
    return key_id, secret


_KEY_ROW = select(
    AccessKey.account_id, AccessKey.secret_encrypted, AccessKey.principal, AccessKey.enabled
).where(AccessKey.access_key_id == bindparam("key_id"))
_SESSION_ROW = (
    select(
        RoleSession.account_id,
        RoleSession.secret_encrypted,
        RoleSession.token_sha256,
        RoleSession.expiration,
        RoleSession.instance_id,
        RoleSession.role_id,
        Role.name.label("role_name"),
    )
    .join(Role, Role.id == RoleSession.role_id)
    .where(RoleSession.access_key_id == bindparam("key_id"))
)
_ROLE_POLICIES = (
    select(RolePolicy.document)
    .where(RolePolicy.role_id == bindparam("role_id"))
    .order_by(RolePolicy.name)
)
#: Role session keys start so, as AWS's temporary keys do; long-lived ones with AKIA.
SESSION_KEY_PREFIX = "ASIA"


@dataclass
class DbCredentialStore:
    """Keys as the database holds them now: every lookup reads the key's row.

    A key disabled, deleted or given a new secret (by this process or any other)
    is refused or checked against the new secret from the next request on. What is
    cached is only the decryption: the secret is remembered per (key id,
    ciphertext), so a changed row never meets a stale secret. The read is one
    indexed SELECT outside any transaction (no BEGIN/ROLLBACK round trips).
    """

    db: Database
    secrets: Secrets
    #: Decrypted secrets kept at most (a few keys per account in practice).
    cache_size: int = 1024
    _plain: dict[tuple[str, bytes], str] = field(default_factory=dict, init=False, repr=False)

    def lookup(self, access_key_id: str) -> Credential | None:
        if access_key_id.startswith(SESSION_KEY_PREFIX):
            return self._session(access_key_id)
        with self.db.reader() as conn:
            row = conn.execute(_KEY_ROW, {"key_id": access_key_id}).first()
        if row is None:
            return None
        return Credential(
            access_key_id=access_key_id,
            secret_access_key=self._secret(access_key_id, bytes(row.secret_encrypted)),
            account_id=row.account_id,
            principal=row.principal,
            enabled=row.enabled,
        )

    def _session(self, access_key_id: str) -> Credential | None:
        """A role session's key with the role's policies as they are now."""
        with self.db.reader() as conn:
            row = conn.execute(_SESSION_ROW, {"key_id": access_key_id}).first()
            if row is None:
                return None
            documents = tuple(conn.scalars(_ROLE_POLICIES, {"role_id": row.role_id}))
        purpose = session_secret_purpose(access_key_id)
        return Credential(
            access_key_id=access_key_id,
            secret_access_key=self._secret(access_key_id, bytes(row.secret_encrypted), purpose),
            account_id=row.account_id,
            principal=session_principal(row.account_id, row.role_name, row.instance_id),
            # A role without policies allows nothing (an empty policy), never everything.
            policy=parse_policies(documents),
            session_token_sha256=row.token_sha256,
            expiration=_aware(row.expiration),
        )

    def _secret(self, access_key_id: str, blob: bytes, purpose: str | None = None) -> str:
        cache_key = (access_key_id, blob)
        secret = self._plain.get(cache_key)
        if secret is None:
            secret = self.secrets.decrypt(blob, purpose or _purpose(access_key_id))
            if len(self._plain) >= self.cache_size:
                self._plain.clear()
            self._plain[cache_key] = secret
        return secret

    def create_key(self, account_id: str, principal: str, now: datetime) -> tuple[str, str]:
        key_id, secret = new_access_key()
        with self.db.transaction() as session:
            ensure_account(session, account_id, now)
            session.add(
                AccessKey(
                    access_key_id=key_id,
                    account_id=account_id,
                    secret_encrypted=self.secrets.encrypt(secret, _purpose(key_id)),
                    principal=principal,
                    enabled=True,
                    created=now,
                )
            )
        return key_id, secret


def _aware(moment: datetime) -> datetime:
    # A Core (not ORM) read skips UTCDateTime on some drivers: SQLite gives naive UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class BootstrapResult:
    account_id: str
    access_key_id: str
    credentials_file: Path
    created: bool

    def message(self) -> str:
        """What to print at start; never the secret itself."""
        verb = "Created" if self.created else "Using"
        return (
            f"{verb} admin access key {self.access_key_id} (account {self.account_id}); "
            f"its secret is in {self.credentials_file} (profile {PROFILE})"
        )


def bootstrap_admin(
    db: Database, secrets: Secrets, data_dir: Path, region: str = DEFAULT_REGION
) -> BootstrapResult:
    now = datetime.now(UTC)
    env_id, env_secret = os.environ.get(KEY_ID_ENV), os.environ.get(SECRET_ENV)
    created = False
    with db.transaction() as session:
        account = session.scalars(select(Account).order_by(Account.created)).first()
        account_id = account.id if account else _new_account_id()
        ensure_account(session, account_id, now)
        admin = session.scalars(
            select(AccessKey).where(AccessKey.principal == ADMIN).order_by(AccessKey.created)
        ).first()
        if env_id and env_secret:
            row = session.get(AccessKey, env_id)
            if row is None:
                row = AccessKey(
                    access_key_id=env_id,
                    account_id=account_id,
                    principal=ADMIN,
                    enabled=True,
                    created=now,
                    secret_encrypted=b"",
                )
                session.add(row)
                created = True
            row.secret_encrypted = secrets.encrypt(env_secret, _purpose(env_id))
            key_id, secret = env_id, env_secret
            account_id = row.account_id
        elif admin is not None:
            key_id = admin.access_key_id
            secret = secrets.decrypt(admin.secret_encrypted, _purpose(key_id))
            account_id = admin.account_id
        else:
            key_id, secret = new_access_key()
            session.add(
                AccessKey(
                    access_key_id=key_id,
                    account_id=account_id,
                    secret_encrypted=secrets.encrypt(secret, _purpose(key_id)),
                    principal=ADMIN,
                    enabled=True,
                    created=now,
                )
            )
            created = True
    path = credentials_path(data_dir)
    _write_credentials(path, key_id, secret, region)
    return BootstrapResult(account_id, key_id, path, created)


def _new_account_id() -> str:
    if value := os.environ.get(ACCOUNT_ENV):
        return value
    return str(_random.randbelow(9 * 10**11) + 10**11)


def _write_credentials(path: Path, key_id: str, secret: str, region: str) -> None:
    """Write the ``panoptes`` profile, keeping any other profile in the file."""
    parser = configparser.ConfigParser()
    if path.exists():
        parser.read(path)
    parser[PROFILE] = {
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "region": region,
    }
    buf = io.StringIO()
    parser.write(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(buf.getvalue())
    os.replace(tmp, path)
