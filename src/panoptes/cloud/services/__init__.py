"""The Panorama service's domain logic: one module per resource family.

    backend = PanoramaBackend(Database.open(url), store, Settings(data_dir))
    backend.handle("ListDevices", ctx, {})

devices, provisioning (CA, certificates), jobs, cameras, packages (+ nodes),
imports, applications, tags, quotas; `device_view` is what the device agent uses;
`credentials` the access keys; `states` the transition tables.
"""

from panoptes.cloud.services.backend import OPERATIONS, PanoramaBackend, Services
from panoptes.cloud.services.credentials import BootstrapResult, DbCredentialStore, bootstrap_admin
from panoptes.cloud.services.quotas import Limits
from panoptes.cloud.services.secrets import Secrets
from panoptes.cloud.services.settings import Settings

__all__ = [
    "OPERATIONS",
    "BootstrapResult",
    "DbCredentialStore",
    "Limits",
    "PanoramaBackend",
    "Secrets",
    "Services",
    "Settings",
    "bootstrap_admin",
]
