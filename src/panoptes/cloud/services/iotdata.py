"""botocore's ``iot-data`` service, Publish only: an app's messages onto the platform broker.

On AWS an application with ``iot:Publish`` in its role sends MQTT messages through
``boto3.client("iot-data").publish(topic=..., payload=...)``. Here the same call
reaches the platform's MQTT broker, through an injected ``publish(topic, payload,
qos)`` (the channel's client), under a namespace the caller cannot leave:

* a role session (an application): ``panoptes/v1/devices/{device}/apps/{TOPIC}``,
  the device being the one the instance runs on (known from the session);
* a long-lived key (admin, users): ``panoptes/v1/accounts/{account}/apps/{TOPIC}``.

So an app never writes on the device link's own topics (``.../devices/{id}/desired``
and the like), nor in another device's space; subscribers read an app's messages
at ``panoptes/v1/devices/+/apps/#``. The policy's resource is the topic as the app
named it (``arn:aws:iot:REGION:ACCOUNT:topic/TOPIC``), as on AWS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db import Database
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services.roles import session_of
from panoptes.link import TOPIC_ROOT, VERSION

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], None]
#: access key id -> the device its role session belongs to (None: not a session).
DeviceOfKey = Callable[[str], "str | None"]
ACCOUNT_ROOT = f"panoptes/{VERSION}/accounts"
MAX_PAYLOAD = 128 * 1024  # AWS IoT's message size limit


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def app_topic(topic: str, *, device_id: str | None, account_id: str) -> str:
    """Where an app's Publish to ``topic`` goes on the platform broker."""
    if device_id is not None:
        return f"{TOPIC_ROOT}/{device_id}/apps/{topic}"
    return f"{ACCOUNT_ROOT}/{account_id}/apps/{topic}"


def check_topic(topic: str) -> None:
    if not topic:
        raise _invalid("topic must not be empty")
    if "+" in topic or "#" in topic:
        raise _invalid(f"topic {topic!r}: wildcards (+, #) are for subscribing, not publishing")
    if topic.startswith("$"):
        raise _invalid(f"topic {topic!r}: topics starting with $ are reserved")
    if "\x00" in topic:
        raise _invalid("topic must not contain NUL characters")


class IotDataBackend:
    service = "iot-data"

    def __init__(self, publish: Publish, device_of_key: DeviceOfKey) -> None:
        self._publish = publish
        self._device_of_key = device_of_key

    @classmethod
    def over(cls, db: Database, publish: Publish) -> IotDataBackend:
        """The backend `serve` registers: devices known from the role sessions in ``db``."""

        def device_of_key(access_key_id: str) -> str | None:
            session = session_of(db, access_key_id)
            return session.device_id if session is not None else None

        return cls(publish, device_of_key)

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if operation != "Publish":
            raise ServiceError(
                "MethodNotAllowedException",
                f"{operation} is not supported here; Panoptes serves iot-data Publish only",
            )
        topic = params.get("topic") or ""
        check_topic(topic)
        qos = params.get("qos") or 0
        if qos not in (0, 1):
            raise _invalid(f"qos must be 0 or 1, not {qos}")
        payload = params.get("payload") or b""
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes):
            payload = payload.read()
        if len(payload) > MAX_PAYLOAD:
            raise _invalid(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD}")
        target = app_topic(
            topic, device_id=self._device_of_key(ctx.access_key_id), account_id=ctx.account_id
        )
        try:
            self._publish(target, payload, qos)
        except Exception:
            log.exception("iot-data publish to %s failed (request %s)", target, ctx.request_id)
            raise ServiceError(
                "InternalFailureException", "the message broker did not accept the message"
            ) from None
        return {}
