"""`panoptes serve` options: where the database and the objects go."""

from __future__ import annotations

from pathlib import Path

import pytest

from panoptes.cloud.server import ConfigError, ServerConfig, open_store
from panoptes.cloud.storage.filesystem import FilesystemStore
from panoptes.cloud.storage.prefixed import PrefixedStore
from panoptes.cloud.storage.s3 import S3Store


def test_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    config = ServerConfig(tmp_path, host="0.0.0.0", port=9090)
    assert config.database_url == f"sqlite:///{tmp_path / 'panoptes.db'}"
    assert config.endpoint_url == "http://127.0.0.1:9090"  # clients reach a wildcard bind
    store = open_store(None, tmp_path)
    assert isinstance(store, FilesystemStore) and store.root == tmp_path / "objects"


def test_object_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert isinstance(open_store(f"file://{tmp_path}/o", tmp_path), FilesystemStore)
    assert isinstance(open_store("s3://", tmp_path), S3Store)
    given = open_store("s3://company-bucket/panoptes/prod", tmp_path)
    assert isinstance(given, PrefixedStore)
    assert (given.bucket, given.prefix) == ("company-bucket", "panoptes/prod/")
    with pytest.raises(ConfigError, match="s3://BUCKET/PREFIX"):
        open_store("ftp://host/x", tmp_path)
