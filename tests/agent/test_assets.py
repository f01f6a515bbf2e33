"""The asset cache against a real mutual-TLS server reading the control plane's store."""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import AssetServer, Pki, running_asset_server
from api_helpers import Stack

from panoptes import link
from panoptes.agent.assets import AssetCache, AssetError

BUCKET = "agent-assets-test"


@pytest.fixture(scope="module")
def server(stack: Stack, pki: Pki) -> Iterator[tuple[str, AssetServer]]:
    stack.server.backend.env.store.create_bucket(BUCKET)
    with running_asset_server(pki, stack.server.backend.env.store) as running:
        yield running


def _device_tls(pki: Pki) -> ssl.SSLContext:
    cert, key = pki.issue("device-assets-test")
    ctx = ssl.create_default_context(cafile=str(pki.ca_path))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _put(stack: Stack, name: str, data: bytes) -> dict:
    stack.server.backend.env.store.put(BUCKET, f"assets/{name}", data)
    return {
        "Name": name,
        "Sha256": hashlib.sha256(data).hexdigest(),
        "Size": len(data),
        "Path": f"{link.DEVICE_HTTP_ASSETS}/{BUCKET}/assets/{name}",
    }


def test_downloads_verifies_and_caches_by_digest(
    stack: Stack, pki: Pki, server: tuple[str, AssetServer], tmp_path: Path
) -> None:
    url, srv = server
    data = os.urandom(300_000)
    asset = _put(stack, "model.tar.gz", data)
    cache = AssetCache(tmp_path / "cache", url, _device_tls(pki))
    path = cache.fetch(asset)
    assert path == tmp_path / "cache" / asset["Sha256"]
    assert path.read_bytes() == data
    asked = len(srv.requests)
    assert cache.fetch(asset) == path
    assert len(srv.requests) == asked  # served from the cache


def test_an_interrupted_download_resumes_where_it_stopped(
    stack: Stack, pki: Pki, server: tuple[str, AssetServer], tmp_path: Path
) -> None:
    url, srv = server
    data = os.urandom(500_000)
    asset = _put(stack, "big.bin", data)
    srv.cut_after = 200_000
    try:
        path = AssetCache(tmp_path / "cache", url, _device_tls(pki)).fetch(asset)
    finally:
        srv.cut_after = None
    assert path.read_bytes() == data
    ranges = [rng for key, rng in srv.requests if key == "assets/big.bin"]
    assert ranges[0] is None and ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 200_000  # only the missing part was asked for again
    assert not list((tmp_path / "cache").glob("*.part"))


def test_a_bad_digest_names_the_asset_and_caches_nothing(
    stack: Stack, pki: Pki, server: tuple[str, AssetServer], tmp_path: Path
) -> None:
    url, srv = server
    asset = _put(stack, "code.tar.gz", b"application code" * 1000)
    srv.corrupt.add("assets/code.tar.gz")
    cache = AssetCache(tmp_path / "cache", url, _device_tls(pki))
    try:
        with pytest.raises(AssetError, match=r"asset code\.tar\.gz: .*SHA-256.*not cached"):
            cache.fetch(asset)
    finally:
        srv.corrupt.clear()
    assert list((tmp_path / "cache").iterdir()) == []
    assert cache.fetch(asset).read_bytes() == b"application code" * 1000  # good once fixed


def test_a_missing_asset_is_named(
    pki: Pki, server: tuple[str, AssetServer], tmp_path: Path
) -> None:
    url, _ = server
    asset = {
        "Name": "gone.bin",
        "Sha256": "0" * 64,
        "Size": 1,
        "Path": f"{link.DEVICE_HTTP_ASSETS}/{BUCKET}/assets/gone.bin",
    }
    with pytest.raises(AssetError, match=r"asset gone\.bin: .* answered 404"):
        AssetCache(tmp_path / "cache", url, _device_tls(pki)).fetch(asset)
