"""Where alarm notifications go: webhooks (HTTP POST of JSON) and e-mail over SMTP.

An alarm action names its target: ``https://...`` / ``http://...`` (webhook) or
``mailto:ops@example.com``. Other strings (an SNS topic ARN from a script written
for AWS) are kept but cannot be delivered here; the history says so. Delivery never
logs a secret: webhook URLs are shown as scheme://host only (they often carry a
token in the path) and the SMTP password is never printed.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

TIMEOUT_SECONDS = 10.0


def is_deliverable(target: str) -> bool:
    return target.startswith(("http://", "https://", "mailto:"))


def redacted(target: str) -> str:
    """What may be shown of a target: webhook URL paths and queries may hold tokens."""
    if target.startswith("mailto:"):
        return target
    parsed = urlparse(target)
    if parsed.scheme in ("http", "https"):
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{parsed.hostname}{port}/..."
    return target


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "panoptes@localhost"
    username: str | None = None
    password: str | None = None
    #: "ssl" (smtps://, port 465), "starttls" (?starttls=true) or "" (plain).
    security: str = ""

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """``smtp[s]://[user:password@]host[:port][?from=addr&starttls=true]``."""
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(
                f"SMTP setting {redacted_smtp(url)!r}: use smtp://host:port?from=alarms@example.com"
                " (smtps:// for TLS, ?starttls=true for STARTTLS)"
            )
        query = parse_qs(parsed.query)
        security = "ssl" if parsed.scheme == "smtps" else ""
        if query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes"):
            security = "starttls"
        return cls(
            host=parsed.hostname,
            port=parsed.port or (465 if security == "ssl" else 25),
            sender=query.get("from", ["panoptes@localhost"])[0],
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            security=security,
        )

    def __repr__(self) -> str:  # never the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r})"


def redacted_smtp(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


@dataclass(frozen=True)
class Outcome:
    target: str
    ok: bool
    detail: str


class Notifier:
    """Delivers one alarm message to one target; returns an Outcome, never raises."""

    def __init__(self, smtp: SmtpSettings | None = None, timeout: float = TIMEOUT_SECONDS) -> None:
        self.smtp, self.timeout = smtp, timeout

    def deliver(self, target: str, message: dict[str, Any]) -> Outcome:
        shown = redacted(target)
        try:
            if target.startswith(("http://", "https://")):
                return self._webhook(target, message, shown)
            if target.startswith("mailto:"):
                return self._email(target.removeprefix("mailto:"), message, shown)
        except (OSError, smtplib.SMTPException, urllib.error.URLError) as exc:
            return Outcome(shown, False, f"Failed to deliver to {shown}: {type(exc).__name__}")
        return Outcome(
            shown, False, f"Cannot deliver to {shown}: Panoptes sends to http(s):// and mailto:"
        )

    def _webhook(self, url: str, message: dict[str, Any], shown: str) -> Outcome:
        request = urllib.request.Request(
            url,
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "panoptes-alarms"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            status = response.status
        return Outcome(shown, 200 <= status < 300, f"Webhook {shown} answered HTTP {status}")

    def _email(self, address: str, message: dict[str, Any], shown: str) -> Outcome:
        if self.smtp is None:
            return Outcome(
                shown, False, f"Cannot e-mail {address}: no SMTP server configured (--smtp)"
            )
        mail = EmailMessage()
        mail["From"] = self.smtp.sender
        mail["To"] = address
        mail["Subject"] = (
            f'{message["NewStateValue"]}: "{message["AlarmName"]}" in {message["Region"]}'
        )
        mail.set_content(email_body(message))
        settings = self.smtp
        if settings.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=self.timeout,
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(mail)
        return Outcome(shown, True, f"Sent e-mail to {address}")


def email_body(message: dict[str, Any]) -> str:
    trigger = message.get("Trigger", {})
    dims = ", ".join(f"{d['name']}={d['value']}" for d in trigger.get("Dimensions", []))
    return (
        f"Alarm {message['AlarmName']} is now {message['NewStateValue']} "
        f"(was {message['OldStateValue']}).\n\n"
        f"Reason: {message['NewStateReason']}\n"
        f"When: {message['StateChangeTime']}\n"
        f"Metric: {trigger.get('Namespace')} {trigger.get('MetricName')} [{dims}]\n"
        f"Rule: {trigger.get('Statistic')} {trigger.get('ComparisonOperator')} "
        f"{trigger.get('Threshold')} over {trigger.get('EvaluationPeriods')} x "
        f"{trigger.get('Period')} s\n"
        f"Account: {message['AWSAccountId']}  Region: {message['Region']}\n"
    )
