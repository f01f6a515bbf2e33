"""What an install configures: where its files live, its endpoints, its limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from panoptes.cloud.services.quotas import Limits


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    #: Control-plane URLs written into the certificates archive for the device agent.
    endpoints: tuple[str, ...] = ("https://127.0.0.1:8443",)
    #: The device link (panoptes.link) in the certificates archive: the MQTT broker
    #: (mqtts://host:port) and the device endpoint (https://host:port) devices dial.
    broker_url: str = "mqtts://127.0.0.1:8883"
    device_endpoint: str = "https://127.0.0.1:8081"
    limits: Limits = field(default_factory=Limits)
    #: The device software version DescribeDevice offers as LatestSoftware.
    latest_software: str = "0.1.0"
    #: ProvisionDevice's one-time credential lifetime (the guide says 5 minutes).
    provisioning_ttl: timedelta = timedelta(minutes=5)
    #: A device silent for longer than this is OFFLINE.
    heartbeat_timeout: timedelta = timedelta(minutes=2)
    device_certificate_days: int = 365
