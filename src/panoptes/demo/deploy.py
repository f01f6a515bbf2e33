"""Publish the demo project and deploy it to a device, through the public API only.

The same calls a user makes with the AWS CLI: package-application (upload +
RegisterPackageVersion), CreateNodeFromTemplateJob for the camera, then
CreateApplicationInstance with overrides that choose the camera. Running it again
replaces the demo instance on that device instead of adding a second one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from panoptes.demo.project import NAME, graph_path, make_demo_project
from panoptes.project.errors import ProjectError
from panoptes.project.package_app import Clients, package_application

CAMERA = "DEMO_CAMERA"
INSTANCE_NAME = "panoptes-demo"
_LIVE = ("DEPLOYMENT_PENDING", "DEPLOYMENT_REQUESTED", "DEPLOYMENT_IN_PROGRESS",
         "DEPLOYMENT_SUCCEEDED", "DEPLOYMENT_FAILED")  # fmt: skip


def compact(text: str) -> str:
    """One line: the API's PayloadData pattern (^.+$) takes no newlines."""
    return json.dumps(json.loads(text), separators=(",", ":"))


def overrides(account: str) -> dict:
    """Replace the graph's abstract camera with the registered demo camera."""
    return {
        "nodeGraphOverrides": {
            "envelopeVersion": "2021-01-01",
            "packages": [{"name": f"{account}::{CAMERA}", "version": "1.0"}],
            "nodes": [{"name": "demo_camera", "interface": f"{account}::{CAMERA}.{CAMERA}"}],
            "nodeOverrides": [{"replace": "camera_node", "with": [{"name": "demo_camera"}]}],
        }
    }


def register_camera(clients: Clients, url: str, timeout: float = 60.0) -> bool:
    """The demo camera as a data source; False when it is registered already.

    `panoptes up --demo` keeps the camera's URL stable per data dir, so a second run
    reuses the registration (replacing it would pull the camera from under the
    instance that is running).
    """
    api = clients.panorama
    try:
        job = api.create_node_from_template_job(
            TemplateType="RTSP_CAMERA_STREAM",
            OutputPackageName=CAMERA,
            OutputPackageVersion="1.0",
            NodeName=CAMERA,
            NodeDescription="Panoptes demo camera (a looping test pattern)",
            TemplateParameters={"Username": "demo", "Password": "demo", "StreamUrl": url},
        )["JobId"]
    except api.exceptions.ConflictException:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = clients.panorama.describe_node_from_template_job(JobId=job)
        if state["Status"] == "SUCCEEDED":
            return True
        if state["Status"] == "FAILED":
            raise ProjectError(
                f"registering the demo camera failed: {state.get('StatusMessage')}",
                "check the control plane's log",
            )
        time.sleep(0.5)
    raise ProjectError("registering the demo camera did not finish", "check the control plane")


def deploy_demo(
    clients: Clients,
    workdir: Path,
    account: str,
    device_id: str,
    camera_url: str,
    say: Callable[[str], None] = print,
) -> str:
    """Build, publish and deploy the demo on ``device_id``; the new instance's id."""
    project = make_demo_project(workdir, account)
    packaged = package_application(project, clients, say=say)
    new_camera = register_camera(clients, camera_url)
    previous = [
        i
        for i in clients.panorama.list_application_instances(DeviceId=device_id)[
            "ApplicationInstances"
        ]
        if i.get("Name") == INSTANCE_NAME and i["Status"] in _LIVE
    ]
    if previous and not packaged.registered and not new_camera:
        # Nothing changed since the demo was deployed: the device runs it already.
        kept = previous[0]["ApplicationInstanceId"]
        if previous[0]["Status"] != "DEPLOYMENT_FAILED":
            say(f"The demo application is deployed already: {kept} on {device_id}")
            return kept
    params = {
        "Name": INSTANCE_NAME,
        "Description": f"the {NAME} project, deployed by panoptes up --demo",
        "DefaultRuntimeContextDevice": device_id,
        "ManifestPayload": {"PayloadData": compact(graph_path(project).read_text())},
        "ManifestOverridesPayload": {"PayloadData": json.dumps(overrides(account))},
    }
    if previous:
        params["ApplicationInstanceIdToReplace"] = previous[0]["ApplicationInstanceId"]
    instance = clients.panorama.create_application_instance(**params)["ApplicationInstanceId"]
    say(f"Deployed the demo application: {instance} on {device_id}")
    return instance
