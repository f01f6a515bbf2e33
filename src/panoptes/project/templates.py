"""The manifests new projects and packages start from.

Shapes follow what panorama-cli writes (so existing tutorials still match), with
two repairs: camera/data-sink packages get the package name and version filled
in, and every builder returns a fresh dict so callers can mutate it freely.
"""

from __future__ import annotations

from typing import Any

ENVELOPE = "2021-01-01"

# Our own Dockerfile for new code packages. Same effect as panorama-cli's:
# start from the Panorama application base image, put src/ under /panorama.
DOCKERFILE = """\
# Base image of Panorama application containers. Pin a tag for reproducible builds.
FROM public.ecr.aws/panorama/panorama-application
# Application code lives under /panorama on the device (see descriptor.json entry).
COPY src /panorama
"""


def graph() -> dict[str, Any]:
    return {"nodeGraph": {"envelopeVersion": ENVELOPE, "packages": [], "nodes": [], "edges": []}}


def package(name: str, version: str) -> dict[str, Any]:
    return {
        "nodePackage": {
            "envelopeVersion": ENVELOPE,
            "name": name,
            "version": version,
            "description": f"Default description for package {name}",
            "assets": [],
            "interfaces": [],
        }
    }


def runtime_descriptor() -> dict[str, Any]:
    return {
        "runtimeDescriptor": {
            "envelopeVersion": ENVELOPE,
            "entry": {"path": "python3", "name": "/panorama/<entry_file_name_under_src>"},
        }
    }


def model_descriptor() -> dict[str, Any]:
    return {
        "mlModelDescriptor": {
            "envelopeVersion": ENVELOPE,
            "framework": "",
            "inputs": [{"name": "", "shape": []}],
        }
    }


def _media(direction: str, name: str) -> dict[str, Any]:
    return {"description": f"Video stream {direction}", "name": name, "type": "media"}


CAMERA_INTERFACE = "rtsp_interface"
DATASINK_INTERFACE = "sink_interface"


def camera_package(name: str, version: str) -> dict[str, Any]:
    """An RTSP camera package backed by the device's built-in RTSP source."""
    doc = package(name, version)
    doc["nodePackage"]["description"] = "RTSP/ONVIF camera data source node package"
    doc["nodePackage"]["assets"] = [
        {
            "name": "rtsp_camera",
            "implementations": [
                {"type": "system", "assetUri": "source/video/camera/rtsp/source_rtsp"}
            ],
        }
    ]
    inputs = [
        ("username", "Camera username", "<username>"),
        ("password", "Camera password. Use empty string if there's no password", "<password>"),
        ("streamUrl", "Camera streamUrl", "rtsp://<stream url>"),
    ]
    doc["nodePackage"]["interfaces"] = [
        {
            "description": f"RTSP camera {name}",
            "name": CAMERA_INTERFACE,
            "category": "media_source",
            "asset": "rtsp_camera",
            "inputs": [
                {"description": d, "name": n, "type": "string", "default": v} for n, d, v in inputs
            ],
            "outputs": [_media("output", "video_out")],
        }
    ]
    return doc


def datasink_package(name: str, version: str) -> dict[str, Any]:
    """An HDMI output package backed by the device's built-in HDMI sink."""
    doc = package(name, version)
    doc["nodePackage"]["assets"] = [
        {
            "name": "sink_hdmi",
            "implementations": [{"type": "system", "assetUri": "sink/video/hdmi/sink_hdmi"}],
        }
    ]
    doc["nodePackage"]["interfaces"] = [
        {
            "name": DATASINK_INTERFACE,
            "category": "media_sink",
            "asset": "sink_hdmi",
            "inputs": [_media("input", "video_in")],
            "outputs": [_media("output", "video_out")],
        }
    ]
    return doc


def interface(name: str, category: str, asset: str) -> dict[str, Any]:
    """The interface build-container/add-raw-model add for a new asset."""
    return {
        "name": name,
        "category": category,
        "asset": asset,
        "inputs": [{"name": "video_in", "type": "media"}],
        "outputs": [{"name": "video_out", "type": "media"}],
    }


def node(name: str, interface: str) -> dict[str, Any]:
    return {"name": name, "interface": interface, "overridable": False, "launch": "onAppStart"}


# Panorama's built-in packages (add-panorama-package).
ABSTRACT_CAMERA = ("panorama::abstract_rtsp_media_source", "1.0", "rtsp_v1_interface")
HDMI_SINK = ("panorama::hdmi_data_sink", "1.0", "hdmi0")


def abstract_camera_node(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "interface": f"{ABSTRACT_CAMERA[0]}.{ABSTRACT_CAMERA[2]}",
        "overridable": True,
        "launch": "onAppStart",
        "decorator": {
            "title": f"Camera {name}",
            "description": f"Default description for camera {name}",
        },
    }


def hdmi_sink_node(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "interface": f"{HDMI_SINK[0]}.{HDMI_SINK[2]}",
        "overridable": False,
        "launch": "onAppStart",
    }
