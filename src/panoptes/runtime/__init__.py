"""The runtime: runs ONE resolved application, for the local runner and the device agent.

    plan = make_plan(resolve(graph, overrides, packages), project_dir, {"camera_node": [uri]})
    with Runtime(plan, workdir, output_dir=out) as rt:
        rt.wait_finished(timeout=60)
        print(rt.status())

`panoramasdk` (the application side) uses only `panoptes.runtime.client`.
"""

from panoptes.runtime.plan import CameraPlan, CodePlan, ModelPlan, RunError, RunPlan, make_plan
from panoptes.runtime.supervisor import (
    ERROR,
    NOT_AVAILABLE,
    PAUSED,
    RUNNING,
    NodeStatus,
    Runtime,
    Signal,
)

__all__ = [
    "ERROR",
    "NOT_AVAILABLE",
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
]
