"""SigV4 verification against botocore's own signers and AWS's published example."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from panoptes.cloud.backend import Credential, StaticCredentials
from panoptes.cloud.protocol import sigv2, sigv4
from panoptes.cloud.protocol.chunked import AwsChunkedDecoder
from panoptes.cloud.protocol.intake import read_body
from panoptes.cloud.protocol.wire import WireError, WireRequest

KEY = Credential("AKIDTEST", "s3cr3t/with+chars", "123456789012", "admin")
OFF = Credential("AKIDOFF", "whatever", "123456789012", "old", enabled=False)
STORE = StaticCredentials((KEY, OFF))


def signed(
    method: str,
    url: str,
    *,
    service: str = "panorama",
    headers: list[tuple[str, str]] = (),
    body: bytes = b"",
    secret: str = KEY.secret_access_key,
    access_key: str = KEY.access_key_id,
    presign: int | None = None,
) -> WireRequest:
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders: assigning twice adds a repeat
    credentials = Credentials(access_key, secret)
    if presign is not None:
        cls = S3SigV4QueryAuth if service == "s3" else SigV4QueryAuth
        cls(credentials, service, "eu-west-1", expires=presign).add_auth(request)
    else:
        cls = S3SigV4Auth if service == "s3" else SigV4Auth
        cls(credentials, service, "eu-west-1").add_auth(request)
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    # The signed HTTPHeaders keep repeated headers (the prepared dict would merge them).
    wire_headers = [(k.lower(), v) for k, v in request.headers.items()]
    wire_headers.append(("host", split.netloc))
    return WireRequest(method, split.path, split.query, wire_headers, body)


def check(request: WireRequest, *, now: datetime | None = None, body: bytes | None = None):
    auth = sigv4.parse_authorization(request)
    claimed = sigv4.claimed_payload_hash(request, auth)
    if claimed is None:
        import hashlib

        claimed = hashlib.sha256(request.body if body is None else body).hexdigest()
    return sigv4.verify(request, auth, STORE, claimed, now=now)


EDGE_URLS = [
    "http://localhost:8080/devices",
    "http://localhost:8080/devices/dev-1?MaxResults=5&NextToken=",
    "http://localhost:8080/tags/arn%3Aaws%3Apanorama%3Aus-east-1%3A1%3Adevice%2Fd-1",
    "http://localhost:8080/x?b=2&a=1&a=0&empty=&bare",
    "http://localhost:8080/unicode/%C3%BC%E2%9C%93?q=%C3%A9t%C3%A9",
    "http://localhost:8080/space%20and%2Bplus?k=a%20b%2Bc",
    "http://localhost:8080/a/./b/../c//d/",
]


@pytest.mark.parametrize("url", EDGE_URLS)
def test_botocore_sigv4_header_form_verifies(url):
    request = signed("POST", url, body=b'{"a": 1}', headers=[("X-Custom", "  two   spaces  ")])
    assert check(request).credential == KEY


@pytest.mark.parametrize(
    "key", ["plain.txt", "a b+c/ü ✓.bin", "dir//double/./dot/../x", "~tilde!'()*", "%41"]
)
def test_botocore_s3_signatures_verify(key):
    from urllib.parse import quote

    url = f"http://127.0.0.1:9000/bucket/{quote(key, safe='/~')}?uploadId=a%20b&partNumber=1"
    assert check(signed("PUT", url, service="s3", body=b"data")).credential == KEY
    presigned = signed("GET", url, service="s3", presign=60)
    assert "X-Amz-Signature" in presigned.query
    assert check(presigned).credential == KEY


def test_repeated_headers_are_joined_in_order():
    request = signed("GET", EDGE_URLS[0], headers=[("X-Dup", "one"), ("X-Dup", "two")])
    assert [v for k, v in request.headers if k == "x-dup"] == ["one", "two"]
    assert check(request)
    # Reordering the repeated values changes what was signed.
    swapped = [(k, {"one": "two", "two": "one"}.get(v, v)) for k, v in request.headers]
    with pytest.raises(sigv4.AuthFailure):
        check(WireRequest(request.method, request.path, request.query, swapped, request.body))


def test_non_s3_presigned_url_verifies():
    assert check(signed("GET", EDGE_URLS[1], presign=300)).credential == KEY


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: WireRequest(r.method, r.path + "x", r.query, r.headers, r.body),
        lambda r: WireRequest("DELETE", r.path, r.query, r.headers, r.body),
        lambda r: WireRequest(r.method, r.path, r.query + "&extra=1", r.headers, r.body),
        lambda r: WireRequest(r.method, r.path, r.query, r.headers, r.body + b" "),
        lambda r: WireRequest(
            r.method,
            r.path,
            r.query,
            [(k, v + "x" if k == "x-custom" else v) for k, v in r.headers],
            r.body,
        ),
    ],
)
def test_any_change_breaks_the_signature(tamper):
    request = signed("POST", EDGE_URLS[1], body=b"{}", headers=[("X-Custom", "v")])
    with pytest.raises(sigv4.AuthFailure) as caught:
        check(tamper(request))
    assert caught.value.kind == "bad_signature"
    err = caught.value.for_service("panorama")
    assert (err.code, err.status) == ("InvalidSignatureException", 403)
    assert caught.value.for_service("s3").code == "SignatureDoesNotMatch"


def test_wrong_secret_unknown_key_disabled_key():
    with pytest.raises(sigv4.AuthFailure) as caught:
        check(signed("GET", EDGE_URLS[0], secret="wrong"))
    assert caught.value.kind == "bad_signature"
    with pytest.raises(sigv4.AuthFailure) as caught:
        check(signed("GET", EDGE_URLS[0], access_key="AKIDNOBODY"))
    assert caught.value.for_service("panorama").code == "UnrecognizedClientException"
    assert caught.value.for_service("s3").code == "InvalidAccessKeyId"
    with pytest.raises(sigv4.AuthFailure) as caught:
        check(
            signed("GET", EDGE_URLS[0], access_key=OFF.access_key_id, secret=OFF.secret_access_key)
        )
    assert caught.value.kind == "disabled_key"


def test_unsigned_request_is_refused():
    with pytest.raises(sigv4.AuthFailure) as caught:
        sigv4.parse_authorization(WireRequest("GET", "/devices"))
    assert caught.value.for_service(None).code == "MissingAuthenticationTokenException"


@pytest.mark.parametrize("minutes", [-16, 16])
def test_clock_skew_window(minutes):
    request = signed("GET", EDGE_URLS[0])
    now = datetime.now(UTC)
    assert check(request, now=now + timedelta(minutes=14 * (1 if minutes > 0 else -1)))
    with pytest.raises(sigv4.AuthFailure) as caught:
        check(request, now=now + timedelta(minutes=minutes))
    assert caught.value.kind == "skewed"
    assert caught.value.for_service("s3").code == "RequestTimeTooSkewed"


def test_presigned_url_expires():
    request = signed("GET", "http://h/bucket/key", service="s3", presign=60)
    assert check(request, now=datetime.now(UTC) + timedelta(seconds=30))
    with pytest.raises(sigv4.AuthFailure) as caught:
        check(request, now=datetime.now(UTC) + timedelta(seconds=120))
    err = caught.value.for_service("s3")
    assert (err.code, err.message) == ("AccessDenied", "Request has expired")


def test_body_hash_must_match_the_signed_header():
    request = signed("PUT", "http://h/bucket/key", service="s3", body=b"original")
    verified = check(request)
    tampered = WireRequest(request.method, request.path, request.query, request.headers)

    async def chunks():
        yield b"tampered"

    with pytest.raises(sigv4.AuthFailure) as caught:
        asyncio.run(read_body(chunks(), tampered, verified=verified, limit=100, spool=False))
    assert caught.value.for_service("s3").code == "XAmzContentSHA256Mismatch"


# AWS's published example of a chunk-signed upload ("Signature Calculations for the
# Authorization Header: Transferring Payload in Multiple Chunks"): 66560 bytes of "a"
# in chunks of 65536 and 1024 bytes, then the final empty chunk.
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_EXAMPLE_SIGS = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]


def aws_example_request() -> tuple[WireRequest, bytes]:
    headers = [
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            "x-amz-decoded-content-length;x-amz-storage-class,"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        ),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
    ]
    body = b""
    for size, sig in zip([65536, 1024, 0], AWS_EXAMPLE_SIGS, strict=True):
        body += f"{size:x};chunk-signature={sig}\r\n".encode() + b"a" * size + b"\r\n"
    assert len(body) == 66824
    return WireRequest("PUT", "/examplebucket/chunkObject.txt", "", headers), body


def aws_example_verified():
    request, body = aws_example_request()
    store = StaticCredentials((Credential("AKIAIOSFODNN7EXAMPLE", AWS_EXAMPLE_SECRET, "1", "x"),))
    auth = sigv4.parse_authorization(request)
    now = datetime(2013, 5, 24, 0, 5, tzinfo=UTC)
    return (
        request,
        body,
        sigv4.verify(request, auth, store, sigv4.claimed_payload_hash(request, auth), now=now),
    )


def test_aws_chunk_signed_example_decodes():
    request, body, verified = aws_example_verified()

    async def pieces():
        for start in range(0, len(body), 1000):  # arbitrary network splits
            yield body[start : start + 1000]

    result = asyncio.run(read_body(pieces(), request, verified=verified, limit=1 << 20, spool=True))
    assert result.size == 66560
    assert result.file.read() == b"a" * 66560


def test_aws_chunk_signed_example_refuses_a_changed_chunk():
    _request, body, verified = aws_example_verified()
    decoder = AwsChunkedDecoder(verified)
    with pytest.raises(sigv4.AuthFailure):
        decoder.feed(body.replace(b"a", b"b", 1))


def test_unsigned_trailer_body_with_crc32_is_checked():
    import base64
    import zlib

    payload = b"hello world" * 1000
    crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
    body = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n"
    body += f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    headers = [
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
        ("x-amz-decoded-content-length", str(len(payload))),
    ]
    request = WireRequest("PUT", "/b/k", "", headers)

    async def once(data):
        yield data

    result = asyncio.run(read_body(once(body), request, verified=None, limit=1 << 20, spool=False))
    assert result.data == payload
    with pytest.raises(WireError):
        bad = body.replace(crc.encode(), b"AAAAAA==")
        asyncio.run(read_body(once(bad), request, verified=None, limit=1 << 20, spool=False))


def test_sigv2_presigned_urls_from_boto3_verify_and_expire():
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id=KEY.access_key_id,
        aws_secret_access_key=KEY.secret_access_key,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "bkt", "Key": "a b+ü.txt"}, ExpiresIn=60
    )
    split = urlsplit(url)
    request = WireRequest("GET", split.path, split.query, [("host", split.netloc)])
    assert sigv2.is_presigned_v2(request)
    assert sigv2.verify_v2(request, STORE) == KEY
    with pytest.raises(sigv4.AuthFailure) as caught:
        sigv2.verify_v2(request, STORE, now=datetime.now(UTC) + timedelta(minutes=5))
    assert caught.value.message == "Request has expired"
    other = WireRequest("GET", split.path + "x", split.query, [("host", split.netloc)])
    with pytest.raises(sigv4.AuthFailure):
        sigv2.verify_v2(other, STORE)
