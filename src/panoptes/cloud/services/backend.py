"""PanoramaBackend: the 34 Panorama operations behind the ServiceBackend protocol.

`handle` runs each operation in one database transaction: a ServiceError rolls it
back and reaches the client as the model's error shape; anything else is logged
(operation and request id only, never parameters: they may hold secrets) and
answered as InternalServerException. Describe* and List* only read: they run
outside a transaction in a session that refuses writes (Database.reading), which
spares PostgreSQL a BEGIN and a COMMIT round trip per call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from panoptes.cloud.context import RequestContext
from panoptes.cloud.db import Database
from panoptes.cloud.errors import InternalError, ServiceError
from panoptes.cloud.services import (
    applications,
    cameras,
    devices,
    imports,
    jobs,
    packages,
    provisioning,
    tags,
)
from panoptes.cloud.services.common import Call
from panoptes.cloud.services.secrets import Secrets
from panoptes.cloud.services.settings import Settings
from panoptes.cloud.storage.base import ObjectStore

log = logging.getLogger(__name__)

Operation = Callable[[Call, dict[str, Any]], dict[str, Any]]

OPERATIONS: dict[str, Operation] = {
    "CreateApplicationInstance": applications.create_application_instance,
    "CreateJobForDevices": jobs.create_job_for_devices,
    "CreateNodeFromTemplateJob": cameras.create_node_from_template_job,
    "CreatePackage": packages.create_package,
    "CreatePackageImportJob": imports.create_package_import_job,
    "DeleteDevice": devices.delete_device,
    "DeletePackage": packages.delete_package,
    "DeregisterPackageVersion": packages.deregister_package_version,
    "DescribeApplicationInstance": applications.describe_application_instance,
    "DescribeApplicationInstanceDetails": applications.describe_application_instance_details,
    "DescribeDevice": devices.describe_device,
    "DescribeDeviceJob": jobs.describe_device_job,
    "DescribeNode": packages.describe_node,
    "DescribeNodeFromTemplateJob": cameras.describe_node_from_template_job,
    "DescribePackage": packages.describe_package,
    "DescribePackageImportJob": imports.describe_package_import_job,
    "DescribePackageVersion": packages.describe_package_version,
    "ListApplicationInstanceDependencies": applications.list_application_instance_dependencies,
    "ListApplicationInstanceNodeInstances": applications.list_application_instance_node_instances,
    "ListApplicationInstances": applications.list_application_instances,
    "ListDevices": devices.list_devices,
    "ListDevicesJobs": jobs.list_devices_jobs,
    "ListNodeFromTemplateJobs": cameras.list_node_from_template_jobs,
    "ListNodes": packages.list_nodes,
    "ListPackageImportJobs": imports.list_package_import_jobs,
    "ListPackages": packages.list_packages,
    "ListTagsForResource": tags.list_tags_for_resource,
    "ProvisionDevice": provisioning.provision_device,
    "RegisterPackageVersion": packages.register_package_version,
    "RemoveApplicationInstance": applications.remove_application_instance,
    "SignalApplicationInstanceNodeInstances": (
        applications.signal_application_instance_node_instances
    ),
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "UpdateDeviceMetadata": devices.update_device_metadata,
}


#: Operations that only read: they run outside a transaction (Database.reading), which
#: refuses any write they might attempt.
READ_ONLY: frozenset[str] = frozenset(
    name for name in OPERATIONS if name.startswith(("Describe", "List"))
)


#: Reads of one resource or one page (paged in SQL): quick, bounded, lock-free; the
#: protocol layer runs them on the event loop (panoptes.cloud.backend.runs_inline).
INLINE: frozenset[str] = frozenset(name for name in READ_ONLY if name.startswith("Describe")) | {
    "ListApplicationInstances",
    "ListApplicationInstanceDependencies",
    "ListApplicationInstanceNodeInstances",
    "ListTagsForResource",
}


class Services:
    """What operations reach besides their transaction: store, settings, keys, CA."""

    def __init__(
        self, db: Database, store: ObjectStore, settings: Settings, secrets: Secrets | None = None
    ) -> None:
        self.db, self.store, self.settings = db, store, settings
        self.secrets = secrets or Secrets.from_data_dir(settings.data_dir)
        self._ca: provisioning.PlatformCA | None = None
        self._lock = threading.Lock()

    def ca(self, now: datetime) -> provisioning.PlatformCA:
        with self._lock:
            if self._ca is None:
                self._ca = provisioning.PlatformCA.load_or_create(self.settings.data_dir, now)
            return self._ca


class PanoramaBackend:
    service = "panorama"
    inline_operations = INLINE

    def __init__(
        self, db: Database, store: ObjectStore, settings: Settings, secrets: Secrets | None = None
    ) -> None:
        self.env = Services(db, store, settings, secrets)

    @property
    def db(self) -> Database:
        return self.env.db

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        func = OPERATIONS.get(operation)
        if func is None:
            raise InternalError(f"operation {operation} is not implemented")
        db = self.env.db
        try:
            with db.reading() if operation in READ_ONLY else db.transaction() as session:
                return func(Call(session, ctx, self.env), params)
        except ServiceError:
            raise
        except Exception:
            log.exception("panorama %s failed (request %s)", operation, ctx.request_id)
            raise InternalError(f"internal error (request {ctx.request_id})") from None
