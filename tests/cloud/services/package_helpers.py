"""Publish packages the way panorama-cli package-application does, for tests."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from sample_app import SAMPLE_APP, sample_packages


def package_doc(name: str, version: str = "1.0", category: str = "business_logic") -> dict:
    return {
        "nodePackage": {
            "envelopeVersion": "2021-01-01",
            "name": name,
            "version": version,
            "description": f"{name} package",
            "assets": [],
            "interfaces": [
                {
                    "name": "interface",
                    "category": category,
                    "inputs": [{"name": "video_in", "type": "media"}],
                    "outputs": [{"name": "video_out", "type": "media"}],
                }
            ],
        }
    }


def with_assets(doc: dict, files: dict[str, tuple[str, bytes]]) -> tuple[dict, dict[str, bytes]]:
    """Name each asset file by its SHA-256 (content-addressed, as the CLI does).

    ``files`` maps an asset name to (extension, content); returns the rewritten doc
    and the files to upload under BinaryPrefixLocation.
    """
    doc = copy.deepcopy(doc)
    uploads: dict[str, bytes] = {}
    assets = []
    for name, (ext, content) in files.items():
        uri = f"{hashlib.sha256(content).hexdigest()}.{ext}"
        uploads[uri] = content
        descriptor = json.dumps({"runtimeDescriptor": {"envelopeVersion": "2021-01-01"}})
        desc_uri = f"{hashlib.sha256(descriptor.encode()).hexdigest()}.json"
        uploads[desc_uri] = descriptor.encode()
        assets.append(
            {
                "name": name,
                "implementations": [
                    {"type": "container", "assetUri": uri, "descriptorUri": desc_uri}
                ],
            }
        )
    doc["nodePackage"]["assets"] = assets
    return doc, uploads


def upload(api: Any, package_id: str, doc: dict, files: dict[str, bytes]) -> str:
    """Put assets and package.json where CreatePackage said; return the patch version."""
    loc = api("DescribePackage", PackageId=package_id)["StorageLocation"]
    for uri, content in files.items():
        api.store.put(loc["Bucket"], f"{loc['BinaryPrefixLocation']}/{uri}", content)
    raw = json.dumps(doc, indent=4).encode()
    patch = hashlib.sha256(raw).hexdigest()
    version = doc["nodePackage"]["version"]
    api.store.put(loc["Bucket"], f"{loc['ManifestPrefixLocation']}/{version}/{patch}.json", raw)
    return patch


def publish(
    api: Any, doc: dict, files: dict[str, bytes] | None = None, mark_latest: bool = True
) -> tuple[str, str]:
    """CreatePackage (when new), upload, RegisterPackageVersion; (package id, patch)."""
    name = doc["nodePackage"]["name"]
    listed = {p["PackageName"]: p["PackageId"] for p in api("ListPackages")["Packages"]}
    package_id = listed.get(name) or api("CreatePackage", PackageName=name)["PackageId"]
    patch = upload(api, package_id, doc, files or {})
    api(
        "RegisterPackageVersion",
        PackageId=package_id,
        PackageVersion=doc["nodePackage"]["version"],
        PatchVersion=patch,
        MarkLatest=mark_latest,
    )
    return package_id, patch


def register_camera(api: Any, name: str, password: str = "s3cr3t-pw", **extra: Any) -> str:
    job = api(
        "CreateNodeFromTemplateJob",
        TemplateType="RTSP_CAMERA_STREAM",
        OutputPackageName=name,
        OutputPackageVersion="1.0",
        NodeName=name,
        TemplateParameters={
            "Username": "admin",
            "Password": password,
            "StreamUrl": f"rtsp://10.0.0.5:554/{name}",
        },
        **extra,
    )
    return job["JobId"]


def publish_sample_app(api: Any) -> dict[str, str]:
    """The developer guide's sample: its two packages (tiny assets) and its camera."""
    code, model, files = sample_packages()
    code_id, code_patch = publish(api, code)
    model_id, model_patch = publish(api, model, files)
    register_camera(api, "MY_CAMERA")
    return {"code": code_patch, "model": model_patch, "code_id": code_id, "model_id": model_id}


def sample_payloads() -> tuple[str, str]:
    graph = (SAMPLE_APP / "graphs/my-app/graph.json").read_text()
    overrides = (SAMPLE_APP / "graphs/my-app/override.json").read_text()
    return graph, overrides
