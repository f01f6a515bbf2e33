"""Camera URLs: credentials in, credentials out of everything printed.

A camera's username and password travel inside its RTSP URL (``rtsp://user:pass@host``)
because that is what FFmpeg takes. Anything that may reach a log, a status line or an
application (``media.stream_uri``) goes through ``mask`` first: the password becomes
``***``; the user name stays, since "which account was refused" is what a 401 needs.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/:@\s]*):[^/@\s]*@")


#: Sources that deliver at their own pace (and may drop and come back), unlike files.
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "/dev/video")


def is_live(uri: str) -> bool:
    """A camera (network stream or V4L2 device), not a video file."""
    return uri.startswith(LIVE_SCHEMES)


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``username``/``password`` set as its userinfo (quoted for a URL)."""
    if not username and not password:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = quote(username or "", safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def credentials(url: str) -> tuple[str | None, str | None]:
    """The (username, password) inside ``url``, unquoted; None for a missing part."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return user, password


def mask(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """``text`` with the password of every URL in it, and each secret, replaced by ***.

    A secret is also masked where it stands alone (FFmpeg may quote it), unless it is
    shorter than 4 characters: masking those would garble unrelated words.
    """
    out = text
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                out = out.replace(f":{form}@", f":{MASK}@")
                if len(secret) >= 4:
                    out = out.replace(form, MASK)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", out)
