"""Allowed state changes, one table per resource.

A resource's status changes because something happened (an API call, a report from
the device); each table maps (status, event) to the next status. Anything not in a
table is refused with ConflictException, so no code path can invent a transition.
"""

from __future__ import annotations

from dataclasses import dataclass

from panoptes.cloud.errors import Conflict


class InvalidTransition(Conflict):
    def __init__(self, machine: str, state: str, event: str, resource_id: str | None) -> None:
        super().__init__(
            f"{machine} {resource_id or ''} is {state}: cannot {event.replace('_', ' ')}".replace(
                "  ", " "
            ),
            resource_id=resource_id,
            resource_type=machine,
        )
        self.state, self.event = state, event


@dataclass(frozen=True)
class StateMachine:
    name: str
    states: tuple[str, ...]
    table: dict[str, dict[str, str]]

    def __post_init__(self) -> None:
        for state, moves in self.table.items():
            assert state in self.states, state
            assert all(t in self.states for t in moves.values()), moves

    @property
    def events(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for moves in self.table.values():
            seen.update(dict.fromkeys(moves))
        return tuple(seen)

    def can(self, state: str, event: str) -> bool:
        return event in self.table.get(state, {})

    def next(self, state: str, event: str, resource_id: str | None = None) -> str:
        """The status after ``event``; InvalidTransition when the table has no such move."""
        try:
            return self.table[state][event]
        except KeyError:
            raise InvalidTransition(self.name, state, event, resource_id) from None

    def event_to(self, state: str, target: str) -> str | None:
        """The event that moves ``state`` to ``target`` (device reports name targets)."""
        return next((e for e, t in self.table.get(state, {}).items() if t == target), None)


# --- application instances (ApplicationInstanceStatus) ---------------------------------

_DEPLOY_ACTIVE = ("DEPLOYMENT_PENDING", "DEPLOYMENT_REQUESTED", "DEPLOYMENT_IN_PROGRESS")
APPLICATION_INSTANCE = StateMachine(
    "applicationInstance",
    (
        "DEPLOYMENT_PENDING",
        "DEPLOYMENT_REQUESTED",
        "DEPLOYMENT_IN_PROGRESS",
        "DEPLOYMENT_ERROR",
        "DEPLOYMENT_SUCCEEDED",
        "REMOVAL_PENDING",
        "REMOVAL_REQUESTED",
        "REMOVAL_IN_PROGRESS",
        "REMOVAL_FAILED",
        "REMOVAL_SUCCEEDED",
        "DEPLOYMENT_FAILED",
    ),
    {
        # published: the desired state reached the device's channel.
        # started / succeeded / failed: the device reports on its work.
        # rejected: the control plane could not prepare the deployment.
        # remove: RemoveApplicationInstance, or the instance that replaces it succeeded.
        "DEPLOYMENT_PENDING": {
            "published": "DEPLOYMENT_REQUESTED",
            "rejected": "DEPLOYMENT_ERROR",
            "remove": "REMOVAL_PENDING",
        },
        "DEPLOYMENT_REQUESTED": {
            "started": "DEPLOYMENT_IN_PROGRESS",
            "succeeded": "DEPLOYMENT_SUCCEEDED",
            "failed": "DEPLOYMENT_FAILED",
            "remove": "REMOVAL_PENDING",
        },
        "DEPLOYMENT_IN_PROGRESS": {
            "succeeded": "DEPLOYMENT_SUCCEEDED",
            "failed": "DEPLOYMENT_FAILED",
            "remove": "REMOVAL_PENDING",
        },
        "DEPLOYMENT_SUCCEEDED": {"remove": "REMOVAL_PENDING"},
        "DEPLOYMENT_FAILED": {"remove": "REMOVAL_PENDING"},
        "DEPLOYMENT_ERROR": {"remove": "REMOVAL_PENDING"},
        "REMOVAL_PENDING": {"published": "REMOVAL_REQUESTED"},
        "REMOVAL_REQUESTED": {
            "started": "REMOVAL_IN_PROGRESS",
            "succeeded": "REMOVAL_SUCCEEDED",
            "failed": "REMOVAL_FAILED",
        },
        "REMOVAL_IN_PROGRESS": {"succeeded": "REMOVAL_SUCCEEDED", "failed": "REMOVAL_FAILED"},
        "REMOVAL_FAILED": {"remove": "REMOVAL_PENDING"},
        "REMOVAL_SUCCEEDED": {},
    },
)
#: Instances that run, or are about to run, on their device.
ACTIVE_INSTANCE_STATUSES = (*_DEPLOY_ACTIVE, "DEPLOYMENT_SUCCEEDED")

# --- device jobs (UpdateProgress) -----------------------------------------------------

_JOB_STATES = (
    "PENDING",
    "IN_PROGRESS",
    "VERIFYING",
    "REBOOTING",
    "DOWNLOADING",
    "COMPLETED",
    "FAILED",
)
DEVICE_JOB = StateMachine(
    "deviceJob",
    _JOB_STATES,
    {
        # The device reports the step it reached; an OTA goes PENDING, IN_PROGRESS,
        # DOWNLOADING, VERIFYING, REBOOTING, COMPLETED; a reboot skips the middle.
        "PENDING": {"in_progress": "IN_PROGRESS", "rebooting": "REBOOTING", "failed": "FAILED"},
        "IN_PROGRESS": {
            "downloading": "DOWNLOADING",
            "rebooting": "REBOOTING",
            "completed": "COMPLETED",
            "failed": "FAILED",
        },
        "DOWNLOADING": {"verifying": "VERIFYING", "failed": "FAILED"},
        "VERIFYING": {"rebooting": "REBOOTING", "completed": "COMPLETED", "failed": "FAILED"},
        "REBOOTING": {"completed": "COMPLETED", "failed": "FAILED"},
        "COMPLETED": {},
        "FAILED": {},
    },
)
FINISHED_JOB_STATUSES = ("COMPLETED", "FAILED")

# --- package versions (PackageVersionStatus) ------------------------------------------

PACKAGE_VERSION = StateMachine(
    "packageVersion",
    ("REGISTER_PENDING", "REGISTER_COMPLETED", "FAILED", "DELETING"),
    {
        "REGISTER_PENDING": {"verified": "REGISTER_COMPLETED", "rejected": "FAILED"},
        "REGISTER_COMPLETED": {"deregister": "DELETING"},
        "FAILED": {"deregister": "DELETING"},
        "DELETING": {},
    },
)

# --- devices (DeviceStatus, the provisioning status) ----------------------------------

DEVICE = StateMachine(
    "device",
    ("AWAITING_PROVISIONING", "PENDING", "SUCCEEDED", "FAILED", "ERROR", "DELETING"),
    {
        # credential_exchanged: the agent traded its one-time credential for a certificate.
        # connected: its first authenticated heartbeat.
        "AWAITING_PROVISIONING": {
            "credential_exchanged": "PENDING",
            "failed": "FAILED",
            "delete": "DELETING",
        },
        "PENDING": {"connected": "SUCCEEDED", "failed": "FAILED", "delete": "DELETING"},
        "SUCCEEDED": {"error": "ERROR", "delete": "DELETING"},
        "ERROR": {"connected": "SUCCEEDED", "delete": "DELETING"},
        "FAILED": {"delete": "DELETING"},
        "DELETING": {},
    },
)

# --- asynchronous jobs that end in SUCCEEDED or FAILED --------------------------------

NODE_FROM_TEMPLATE_JOB = StateMachine(
    "nodeFromTemplateJob",
    ("PENDING", "SUCCEEDED", "FAILED"),
    {"PENDING": {"succeeded": "SUCCEEDED", "failed": "FAILED"}, "SUCCEEDED": {}, "FAILED": {}},
)
PACKAGE_IMPORT_JOB = StateMachine(
    "packageImportJob",
    ("PENDING", "SUCCEEDED", "FAILED"),
    {"PENDING": {"succeeded": "SUCCEEDED", "failed": "FAILED"}, "SUCCEEDED": {}, "FAILED": {}},
)

MACHINES = (
    APPLICATION_INSTANCE,
    DEVICE_JOB,
    PACKAGE_VERSION,
    DEVICE,
    NODE_FROM_TEMPLATE_JOB,
    PACKAGE_IMPORT_JOB,
)
