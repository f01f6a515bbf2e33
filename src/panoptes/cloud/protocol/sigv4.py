"""AWS Signature Version 4 verification (Authorization header and presigned URLs).

Written from the published algorithm: canonical request -> string to sign ->
HMAC-SHA256 with a key derived from the secret, date, region and service. Two
details differ between S3 and every other service, and clients depend on both:
S3 neither normalizes the path nor encodes it a second time, and S3 presigned URLs
sign the payload as ``UNSIGNED-PAYLOAD``.

Failures are ``AuthFailure`` with a neutral ``kind``; ``AuthFailure.for_service``
turns one into the code and status that service's clients expect.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from panoptes.cloud.backend import Credential, CredentialStore
from panoptes.cloud.protocol.wire import WireError, WireRequest, split_query

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: How far a signed request's time may be from ours, as AWS allows.
MAX_SKEW = timedelta(minutes=15)
#: A presigned URL may live at most seven days (S3's limit, applied to all).
MAX_EXPIRES = 7 * 24 * 3600
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

# (S3 code, S3 status, JSON-services code, JSON-services status) per failure kind.
_CODES = {
    "missing": ("AccessDenied", 403, "MissingAuthenticationTokenException", 403),
    "malformed": ("AuthorizationHeaderMalformed", 400, "IncompleteSignatureException", 400),
    "unknown_key": ("InvalidAccessKeyId", 403, "UnrecognizedClientException", 403),
    "disabled_key": ("InvalidAccessKeyId", 403, "UnrecognizedClientException", 403),
    "bad_signature": ("SignatureDoesNotMatch", 403, "InvalidSignatureException", 403),
    "skewed": ("RequestTimeTooSkewed", 403, "InvalidSignatureException", 403),
    "expired": ("AccessDenied", 403, "InvalidSignatureException", 403),
    "payload_mismatch": ("XAmzContentSHA256Mismatch", 400, "InvalidSignatureException", 400),
    # Role sessions: the token missing or not the session's, or the session over.
    "bad_token": ("InvalidToken", 400, "UnrecognizedClientException", 403),
    "expired_token": ("ExpiredToken", 400, "ExpiredTokenException", 400),
}
#: Services answering in the query protocol name the session failures as IAM does.
_QUERY_CODES = {
    ("iam", "bad_token"): "InvalidClientTokenId",
    ("iam", "expired_token"): "ExpiredToken",
}


class AuthFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def for_service(self, service: str | None) -> WireError:
        s3_code, s3_status, code, status = _CODES[self.kind]
        if service == "s3":
            return WireError(s3_code, self.message, status=s3_status)
        code = _QUERY_CODES.get((service or "", self.kind), code)
        return WireError(code, self.message, status=status)


@dataclass(frozen=True)
class Authorization:
    """What a request claims about its signature, before any check."""

    access_key_id: str
    date: str  # YYYYMMDD from the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # the request time, YYYYMMDDTHHMMSSZ
    presigned: bool
    expires: int | None = None

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out: who signed and the key to go on with."""

    credential: Credential
    authorization: Authorization
    signing_key: bytes
    payload_hash: str  # the value that was signed (hex digest or a STREAMING-* marker)


def parse_authorization(request: WireRequest) -> Authorization:
    """Read the Authorization header or the X-Amz-* query parameters."""
    header = request.header("authorization")
    query = request.query_dict()
    if header is not None:
        return _from_header(header, request)
    if "X-Amz-Signature" in query or "X-Amz-Credential" in query:
        return _from_query(query)
    raise AuthFailure("missing", "Missing Authentication Token: every request must be signed")


def _scope_parts(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise AuthFailure(
            "malformed",
            "The credential must look like AKID/YYYYMMDD/region/service/aws4_request",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _from_header(header: str, request: WireRequest) -> Authorization:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthFailure("malformed", f"Unsupported authorization algorithm {algorithm!r}")
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise AuthFailure("malformed", f"Authorization header lacks {', '.join(missing)}")
    amz_date = request.header("x-amz-date")
    if not amz_date:
        raise AuthFailure("malformed", "Signed requests need an X-Amz-Date header")
    key, date, region, service = _scope_parts(fields["Credential"])
    return Authorization(
        key,
        date,
        region,
        service,
        tuple(fields["SignedHeaders"].split(";")),
        fields["Signature"],
        amz_date.strip(),
        presigned=False,
    )


def _from_query(query: dict[str, str]) -> Authorization:
    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders")
    missing = [k for k in (*needed, "X-Amz-Signature") if not query.get(k)]
    if missing:
        raise AuthFailure("malformed", f"Presigned URL lacks {', '.join(missing)}")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthFailure("malformed", f"Unsupported X-Amz-Algorithm {query['X-Amz-Algorithm']!r}")
    try:
        expires = int(query.get("X-Amz-Expires", "900"))
    except ValueError:
        raise AuthFailure("malformed", "X-Amz-Expires must be a number of seconds") from None
    if not 0 < expires <= MAX_EXPIRES:
        raise AuthFailure("malformed", f"X-Amz-Expires must be between 1 and {MAX_EXPIRES}")
    key, date, region, service = _scope_parts(query["X-Amz-Credential"])
    return Authorization(
        key,
        date,
        region,
        service,
        tuple(query["X-Amz-SignedHeaders"].split(";")),
        query["X-Amz-Signature"],
        query["X-Amz-Date"],
        presigned=True,
        expires=expires,
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4, plus AWS's rule that runs of "/" collapse to one.
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    trailing = "/" if path.endswith("/") and out else ""
    return "/" + "/".join(out) + trailing


def canonical_path(raw_path: str, service: str) -> str:
    # Re-encode each segment so equivalent encodings agree; an encoded "/" stays so.
    path = "/".join(quote(unquote(s), safe="~") for s in raw_path.split("/")) or "/"
    if service == "s3":
        return path
    # Every service but S3 normalizes, then encodes the encoded path once more.
    return quote(_remove_dot_segments(path), safe="/~")


def canonical_query(raw_query: str, *, drop_signature: bool) -> str:
    pairs = []
    for key, value in split_query(raw_query):
        if drop_signature and key == "X-Amz-Signature":
            continue
        pairs.append((quote(key, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _trimall(value: str) -> str:
    return " ".join(value.split())


def canonical_request(request: WireRequest, auth: Authorization, payload_hash: str) -> str:
    names = auth.signed_headers
    lines = []
    for name in names:
        values = [_trimall(v) for k, v in request.headers if k == name]
        if not values:
            raise AuthFailure("bad_signature", f"Signed header {name!r} is not in the request")
        lines.append(f"{name}:{','.join(values)}")
    return "\n".join(
        [
            request.method,
            canonical_path(request.path, auth.service),
            canonical_query(request.query, drop_signature=auth.presigned),
            "\n".join(lines) + "\n",
            ";".join(names),
            payload_hash,
        ]
    )


def string_to_sign(auth: Authorization, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{auth.amz_date}\n{auth.scope}\n{digest}"


def claimed_payload_hash(request: WireRequest, auth: Authorization) -> str | None:
    """The payload hash the signature covers, when the request states it.

    None means: hash the body (non-S3 services, whose SDKs do not send the header).
    """
    header = request.header("x-amz-content-sha256")
    if header:
        return header.strip()
    if auth.presigned and auth.service == "s3":
        return UNSIGNED_PAYLOAD
    return None


def _check_time(auth: Authorization, now: datetime) -> None:
    try:
        moment = datetime.strptime(auth.amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise AuthFailure(
            "malformed", f"X-Amz-Date {auth.amz_date!r} is not YYYYMMDDTHHMMSSZ"
        ) from None
    if auth.amz_date[:8] != auth.date:
        raise AuthFailure("malformed", "The credential scope date does not match X-Amz-Date")
    if auth.presigned:
        if moment - now > MAX_SKEW:
            raise AuthFailure("skewed", "Request is not valid yet: X-Amz-Date is in the future")
        assert auth.expires is not None
        if now > moment + timedelta(seconds=auth.expires):
            raise AuthFailure("expired", "Request has expired")
        return
    if abs(now - moment) > MAX_SKEW:
        raise AuthFailure(
            "skewed",
            f"Signature expired: {auth.amz_date} is outside 15 minutes of the server time "
            f"{now.strftime(_AMZ_DATE)}; check the client's clock",
        )


def check_session(credential: Credential, token: str | None, now: datetime) -> None:
    """A role session's key is good only with its token, and only until it expires."""
    if credential.session_token_sha256 is None:
        return
    if not token:
        raise AuthFailure(
            "bad_token",
            "The security token included in the request is invalid: temporary (ASIA) keys "
            "must be sent with their session token (X-Amz-Security-Token)",
        )
    digest = hashlib.sha256(token.encode()).hexdigest()
    if not hmac.compare_digest(digest, credential.session_token_sha256):
        raise AuthFailure("bad_token", "The security token included in the request is invalid")
    if credential.expiration is not None and now >= credential.expiration:
        raise AuthFailure(
            "expired_token",
            f"The security token included in the request is expired (it expired at "
            f"{credential.expiration.strftime(_AMZ_DATE)}); fetch fresh credentials",
        )


def request_token(request: WireRequest, auth: Authorization) -> str | None:
    """The session token a request carries: the header, or a presigned URL's parameter."""
    if auth.presigned:
        return request.query_dict().get("X-Amz-Security-Token")
    return request.header("x-amz-security-token")


def verify(
    request: WireRequest,
    auth: Authorization,
    credentials: CredentialStore,
    payload_hash: str,
    *,
    now: datetime | None = None,
) -> Verified:
    """Check key, time and signature; ``payload_hash`` is what the client signed."""
    credential = credentials.lookup(auth.access_key_id)
    if credential is None:
        raise AuthFailure(
            "unknown_key", "The AWS Access Key Id you provided does not exist in our records"
        )
    if not credential.enabled:
        raise AuthFailure("disabled_key", "The AWS Access Key Id you provided is disabled")
    now = now or datetime.now(UTC)
    check_session(credential, request_token(request, auth), now)
    _check_time(auth, now)
    if "host" not in auth.signed_headers:
        raise AuthFailure("malformed", "The Host header must be signed")
    key = signing_key(credential.secret_access_key, auth.date, auth.region, auth.service)
    canonical = canonical_request(request, auth, payload_hash)
    expected = hmac.new(key, string_to_sign(auth, canonical).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth.signature.strip().lower()):
        raise AuthFailure(
            "bad_signature",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return Verified(credential, auth, key, payload_hash)


def is_hex_hash(value: str) -> bool:
    return bool(_HEX64.fullmatch(value))
