"""Panorama's service quotas (developer guide, "Service Quotas"), per account and Region.

The checks sit where the resources are created (devices, packages, applications);
this module holds the numbers, configurable for an install and lowered in tests.
An exceeded quota is ServiceQuotaExceededException with one of the codes below.
"""

from __future__ import annotations

from dataclasses import dataclass

QUOTA_CODES = (
    "panorama-devices",
    "panorama-packages",
    "panorama-package-versions",
    "panorama-application-instances",
    "panorama-camera-streams",
    "panorama-deployments-per-day",
)


@dataclass(frozen=True)
class Limits:
    devices: int = 50
    packages: int = 50
    versions_per_package: int = 20
    application_instances_per_device: int = 10
    camera_streams_per_application: int = 8
    deployments_per_device_per_day: int = 200
    tags_per_resource: int = 50
