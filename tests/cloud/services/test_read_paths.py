"""The fast read paths: cached key decryption that never outlives the key's row,
reads outside a transaction that refuse writes, listings paged in SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update
from svc_constants import ACCOUNT

from panoptes.cloud.db.database import ReadOnlyViolation
from panoptes.cloud.db.models import AccessKey, Account, Tag
from panoptes.cloud.services import DbCredentialStore, Secrets
from panoptes.cloud.services.backend import INLINE, READ_ONLY
from panoptes.cloud.services.credentials import _purpose


class CountingSecrets(Secrets):
    def __init__(self) -> None:
        super().__init__(b"k" * 32)
        self.decrypted = 0

    def decrypt(self, blob: bytes, purpose: str) -> str:
        self.decrypted += 1
        return super().decrypt(blob, purpose)


def test_key_lookups_decrypt_once_and_see_every_change_at_once(db):
    secrets = CountingSecrets()
    store = DbCredentialStore(db, secrets)
    key_id, secret = store.create_key(ACCOUNT, "someone", datetime.now(UTC))
    for _ in range(5):
        cred = store.lookup(key_id)
        assert cred is not None and cred.enabled and cred.secret_access_key == secret
    assert secrets.decrypted == 1

    # Disabled behind the store's back (another process, plain SQL): refused next time.
    with db.transaction() as session:
        session.execute(
            update(AccessKey).where(AccessKey.access_key_id == key_id).values(enabled=False)
        )
    assert store.lookup(key_id).enabled is False
    with db.transaction() as session:
        session.execute(
            update(AccessKey).where(AccessKey.access_key_id == key_id).values(enabled=True)
        )
    assert store.lookup(key_id).enabled is True

    # A new secret: the cached one is never used again.
    with db.transaction() as session:
        row = session.get(AccessKey, key_id)
        row.secret_encrypted = secrets.encrypt("a-new-secret", _purpose(key_id))
    assert store.lookup(key_id).secret_access_key == "a-new-secret"
    assert secrets.decrypted == 2

    # Deleted: unknown at once.
    with db.transaction() as session:
        session.execute(delete(AccessKey).where(AccessKey.access_key_id == key_id))
    assert store.lookup(key_id) is None


def test_the_decryption_cache_is_bounded(db):
    store = DbCredentialStore(db, CountingSecrets(), cache_size=2)
    keys = [store.create_key(ACCOUNT, f"user-{i}", datetime.now(UTC)) for i in range(5)]
    for key_id, secret in keys * 2:
        assert store.lookup(key_id).secret_access_key == secret
    assert len(store._plain) <= 2


def test_read_sessions_refuse_writes(db):
    now = datetime.now(UTC)
    with db.transaction() as session:
        session.add(Account(id="999999999999", created=now))
    with db.reading() as session:
        assert session.get(Account, "999999999999") is not None
    with pytest.raises(ReadOnlyViolation), db.reading() as session:
        session.add(Tag(resource_arn="arn:x", key="k", value="v"))
        session.flush()
    with pytest.raises(ReadOnlyViolation), db.reading() as session:
        session.execute(delete(Account).where(Account.id == "999999999999"))
    with pytest.raises(ReadOnlyViolation), db.reading() as session:
        session.get(Account, "999999999999").created = now  # left unflushed
    with pytest.raises(ReadOnlyViolation), db.reading() as session:
        session.execute(select(Account).with_for_update()).all()
    with db.reading() as session:
        assert session.get(Account, "999999999999").created is not None  # nothing written


def test_only_reads_run_outside_a_transaction_or_inline():
    assert READ_ONLY and all(op.startswith(("Describe", "List")) for op in READ_ONLY)
    assert INLINE <= READ_ONLY and "ListDevices" not in INLINE
