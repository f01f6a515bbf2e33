"""The runtime: runs ONE resolved application, for the local runner and the device agent.

    plan = make_plan(resolve(graph, overrides, packages), project_dir, {"camera_node": [uri]})
    with Runtime(plan, workdir, output_dir=out) as rt:
        rt.wait_finished(timeout=60)
        print(rt.status())

The device agent runs one Runtime per application instance, in one process, each
with ``instance_id=`` (frame rings and model sockets carry it) and
``shared_output=True``: the most recently started app with an output node owns the
machine's output (see ``shared_output_owner_file``; ``Runtime.owns_output``).

`panoramasdk` (the application side) uses only `panoptes.runtime.client`.
"""

from panoptes.runtime.plan import CameraPlan, CodePlan, ModelPlan, RunError, RunPlan, make_plan
from panoptes.runtime.supervisor import (
    ERROR,
    NOT_AVAILABLE,
    OWNER_ENV,
    PAUSED,
    RUNNING,
    NodeStatus,
    Runtime,
    Signal,
    shared_output_owner_file,
)

__all__ = [
    "ERROR",
    "NOT_AVAILABLE",
    "OWNER_ENV",
    "PAUSED",
    "RUNNING",
    "CameraPlan",
    "CodePlan",
    "ModelPlan",
    "NodeStatus",
    "RunError",
    "RunPlan",
    "Runtime",
    "Signal",
    "make_plan",
    "shared_output_owner_file",
]
