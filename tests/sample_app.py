"""The developer guide's sample application, ready to publish: packages + tiny assets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SAMPLE_APP = (
    Path(__file__).resolve().parents[1].parent
    / "shared/reference/manifest-fixtures/devguide@HEAD/sample-apps/aws-panorama-sample"
)


def sample_packages() -> tuple[dict, dict, dict[str, bytes]]:
    """(SAMPLE_CODE package.json, SQUEEZENET_PYTORCH package.json, its asset files).

    The model package points at a tiny stand-in archive and the real descriptor,
    both named by their SHA-256 as package-application would upload them.
    """
    pkgs = SAMPLE_APP / "packages"
    code = json.loads((pkgs / "123456789012-SAMPLE_CODE-1.0/package.json").read_text())
    model = json.loads((pkgs / "123456789012-SQUEEZENET_PYTORCH-1.0/package.json").read_text())
    model_bytes = b"tiny squeezenet weights"
    descriptor = (pkgs / "123456789012-SQUEEZENET_PYTORCH-1.0/descriptor.json").read_bytes()
    model_uri = f"{hashlib.sha256(model_bytes).hexdigest()}.tar.gz"
    desc_uri = f"{hashlib.sha256(descriptor).hexdigest()}.json"
    impl = model["nodePackage"]["assets"][0]["implementations"][0]
    impl["assetUri"], impl["descriptorUri"] = model_uri, desc_uri
    return code, model, {model_uri: model_bytes, desc_uri: descriptor}
