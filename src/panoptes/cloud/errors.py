"""Typed AWS errors that services raise and the protocol layer serializes.

A service raises ``ServiceError(code, message, **fields)``; the protocol layer looks
the code up in the operation's service model (HTTP status, member names) and writes
the error exactly as botocore expects. Subclasses exist for the codes every service
uses, so call sites read naturally: ``raise ResourceNotFound("device-1", "device")``.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An AWS error response: ``code`` is the error shape name in the service model."""

    #: HTTP status used when the service model does not declare the shape.
    default_status = 400

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = {k: v for k, v in fields.items() if v is not None}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class ValidationError(ServiceError):
    """ValidationException. ``fields``: [{"Name": "DeviceId", "Message": "..."}]."""

    def __init__(
        self, message: str, fields: list[dict[str, str]] | None = None, reason: str | None = None
    ) -> None:
        super().__init__("ValidationException", message, Fields=fields, Reason=reason)


class ResourceNotFound(ServiceError):
    default_status = 404

    def __init__(self, resource_id: str, resource_type: str, message: str | None = None) -> None:
        super().__init__(
            "ResourceNotFoundException",
            message or f"{resource_type} {resource_id} was not found",
            ResourceId=resource_id,
            ResourceType=resource_type,
        )


class Conflict(ServiceError):
    default_status = 409

    def __init__(
        self, message: str, resource_id: str | None = None, resource_type: str | None = None
    ) -> None:
        super().__init__(
            "ConflictException", message, ResourceId=resource_id, ResourceType=resource_type
        )


class AccessDenied(ServiceError):
    default_status = 403

    def __init__(self, message: str = "Access denied") -> None:
        super().__init__("AccessDeniedException", message)


class QuotaExceeded(ServiceError):
    default_status = 402

    def __init__(
        self,
        message: str,
        quota_code: str,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> None:
        super().__init__(
            "ServiceQuotaExceededException",
            message,
            QuotaCode=quota_code,
            ServiceCode="panorama",
            ResourceType=resource_type,
            ResourceId=resource_id,
        )


class Throttled(ServiceError):
    """ThrottlingException: botocore's standard retry mode retries it by its code."""

    default_status = 429

    def __init__(self, message: str = "Rate exceeded", retry_after: float = 1.0) -> None:
        super().__init__("ThrottlingException", message)
        self.retry_after = retry_after


class InternalError(ServiceError):
    default_status = 500

    def __init__(self, message: str = "Internal server error") -> None:
        super().__init__("InternalServerException", message)
