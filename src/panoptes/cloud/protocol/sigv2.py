"""S3's legacy query-string signatures (``AWSAccessKeyId``/``Signature``/``Expires``).

boto3 still produces these from ``generate_presigned_url`` for S3 unless the client
is configured with ``signature_version="s3v4"``, so presigned links handed to
devices and browsers must verify in this form too. Only the query form is accepted:
every SDK signs ordinary calls with SigV4.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import unquote

from panoptes.cloud.backend import Credential, CredentialStore
from panoptes.cloud.protocol.sigv4 import AuthFailure, check_session
from panoptes.cloud.protocol.wire import WireRequest

# Query parameters that are part of the signed resource (S3's "sub-resources").
_SUBRESOURCES = frozenset(
    [
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    ]
)


def is_presigned_v2(request: WireRequest) -> bool:
    query = request.query_dict()
    return "AWSAccessKeyId" in query and "Signature" in query and "Expires" in query


def string_to_sign(request: WireRequest, expires: str) -> str:
    headers: dict[str, list[str]] = {}
    # A presigned URL carries its x-amz-* headers (a session token) as query parameters.
    for name, value in [*request.headers, *request.query_pairs()]:
        name = name.lower()
        if name.startswith("x-amz-"):
            headers.setdefault(name, []).append(value.strip())
    custom = "".join(f"{k}:{','.join(v)}\n" for k, v in sorted(headers.items()))
    resource = request.path
    subresources = []
    for part in request.query.split("&"):
        key, eq, value = part.partition("=")
        if key in _SUBRESOURCES:
            subresources.append((key, f"{key}={unquote(value)}" if eq else key))
    if subresources:
        resource += "?" + "&".join(text for _, text in sorted(subresources))
    md5 = (request.header("content-md5") or "").strip()
    content_type = (request.header("content-type") or "").strip()
    return f"{request.method}\n{md5}\n{content_type}\n{expires}\n{custom}{resource}"


def verify_v2(
    request: WireRequest, credentials: CredentialStore, *, now: datetime | None = None
) -> Credential:
    query = request.query_dict()
    credential = credentials.lookup(query["AWSAccessKeyId"])
    if credential is None:
        raise AuthFailure(
            "unknown_key", "The AWS Access Key Id you provided does not exist in our records"
        )
    if not credential.enabled:
        raise AuthFailure("disabled_key", "The AWS Access Key Id you provided is disabled")
    check_session(credential, query.get("x-amz-security-token"), now or datetime.now(UTC))
    try:
        expires = int(query["Expires"])
    except ValueError:
        raise AuthFailure("malformed", "Expires must be epoch seconds") from None
    if (now or datetime.now(UTC)).timestamp() > expires:
        raise AuthFailure("expired", "Request has expired")
    mac = hmac.new(
        credential.secret_access_key.encode(),
        string_to_sign(request, query["Expires"]).encode(),
        hashlib.sha1,
    )
    expected = base64.b64encode(mac.digest()).decode()
    if not hmac.compare_digest(expected, query["Signature"]):
        raise AuthFailure(
            "bad_signature",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return credential
