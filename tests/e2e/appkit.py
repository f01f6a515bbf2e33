"""Test clips made here with PyAV: moving bars and a counter, H.264 in MP4."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def pattern(i: int, width: int, height: int) -> np.ndarray:
    """A testsrc-like BGR frame: colour bars that scroll with the frame number."""
    x = (np.arange(width) + 4 * i) % width
    bars = (x * 8 // width).astype(np.uint8)
    colours = np.array(
        [[255, 255, 255], [0, 255, 255], [255, 255, 0], [0, 255, 0],
         [255, 0, 255], [0, 0, 255], [255, 0, 0], [40, 40, 40]],
        np.uint8,
    )  # fmt: skip
    img = np.repeat(colours[bars][None, :, :], height, axis=0)
    img[: height // 8, : width // 4] = (i * 7) % 256  # a block that changes every frame
    return np.ascontiguousarray(img)


def make_clip(path: Path, frames: int = 30, width: int = 320, height: int = 240, fps: int = 30):
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "15"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


# --- projects -------------------------------------------------------------------------

import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402

ACCOUNT = "123456789012"
APPS = Path(__file__).parent / "apps"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def squeezenet_archive(path: Path, size: int = 224, classes: int = 1000) -> Path:
    """A SqueezeNet-shaped TorchScript with random weights, packed as SageMaker Neo expects."""
    import model_nets as nets

    squeeze, _ = nets.torch_nets()
    return nets.torchscript_archive(squeeze(classes=classes), (1, 3, size, size), path)


def _write(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))


def build_project(
    root: Path,
    app: str | dict[str, str],
    *,
    params: dict[str, tuple[str, object]] | None = None,
    cameras: tuple[str, ...] = ("camera_node",),
    model: Path | None = None,
    model_shape: tuple[int, ...] = (1, 3, 224, 224),
    output: bool = True,
    extra_files: dict[str, str | bytes] | None = None,
    inbound_ports: tuple[int, ...] = (),
    routing: list[dict] | None = None,
    code_name: str = "APP_CODE",
    launches: dict[str, str] | None = None,
) -> Path:
    """A panorama-cli project: graphs/app/graph.json, packages/, assets/.

    ``app`` is an application folder name under tests/e2e/apps, or {file: source}.
    The code package is laid out as `init-project` + `create-package` leave it:
    Dockerfile copying src/ to /panorama, descriptor.json, no built asset.
    """
    params = params or {}
    pkg = root / "packages" / f"{ACCOUNT}-{code_name}-1.0"
    src = pkg / "src"
    src.mkdir(parents=True, exist_ok=True)
    if isinstance(app, str):
        shutil.copytree(APPS / app, src, dirs_exist_ok=True)
    else:
        for name, text in app.items():
            (src / name).write_text(text)
    for name, content in (extra_files or {}).items():
        p = src / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    (pkg / "Dockerfile").write_text(
        "FROM public.ecr.aws/panorama/panorama-application\nCOPY src /panorama\n"
    )
    _write(
        pkg / "descriptor.json",
        {
            "runtimeDescriptor": {
                "envelopeVersion": "2021-01-01",
                "entry": {"path": "python3", "name": "/panorama/application.py"},
            }
        },
    )
    inputs = [{"name": "video_in", "type": "media"}]
    inputs += [{"name": n, "type": t} for n, (t, _) in params.items()]
    interface = {
        "name": "interface",
        "category": "business_logic",
        "asset": "code_asset",
        "inputs": inputs,
        "outputs": [{"name": "video_out", "type": "media"}],
    }
    if inbound_ports:
        interface["network"] = {"inboundPorts": [{"port": p} for p in inbound_ports]}
    _write(
        pkg / "package.json",
        {
            "nodePackage": {
                "envelopeVersion": "2021-01-01",
                "name": code_name,
                "version": "1.0",
                "description": "test application",
                "assets": [],
                "interfaces": [interface],
            }
        },
    )
    packages = [{"name": f"{ACCOUNT}::{code_name}", "version": "1.0"}]
    nodes: list[dict] = [{"name": "code_node", "interface": f"{ACCOUNT}::{code_name}.interface"}]
    edges = []
    if model is not None:
        assets = root / "assets"
        assets.mkdir(parents=True, exist_ok=True)
        digest = sha256(model)
        shutil.copy(model, assets / f"{digest}.tar.gz")
        desc = {
            "mlModelDescriptor": {
                "envelopeVersion": "2021-01-01",
                "framework": "PYTORCH",
                "frameworkVersion": "1.8",
                "precisionMode": "FP32",
                "inputs": [{"name": "data", "shape": list(model_shape)}],
            }
        }
        desc_bytes = json.dumps(desc, indent=2).encode()
        desc_sha = hashlib.sha256(desc_bytes).hexdigest()
        (assets / f"{desc_sha}.json").write_bytes(desc_bytes)
        mpkg = root / "packages" / f"{ACCOUNT}-SQUEEZENET_PYTORCH-1.0"
        _write(mpkg / "descriptor.json", desc)
        _write(
            mpkg / "package.json",
            {
                "nodePackage": {
                    "envelopeVersion": "2021-01-01",
                    "name": "SQUEEZENET_PYTORCH",
                    "version": "1.0",
                    "description": "Compact classification model",
                    "assets": [
                        {
                            "name": "model_asset",
                            "implementations": [
                                {
                                    "type": "model",
                                    "assetUri": f"{digest}.tar.gz",
                                    "descriptorUri": f"{desc_sha}.json",
                                }
                            ],
                        }
                    ],
                    "interfaces": [
                        {
                            "name": "interface",
                            "category": "ml_model",
                            "asset": "model_asset",
                            "inputs": [{"name": "video_in", "type": "media"}],
                            "outputs": [{"name": "video_out", "type": "media"}],
                        }
                    ],
                }
            },
        )
        packages.append({"name": f"{ACCOUNT}::SQUEEZENET_PYTORCH", "version": "1.0"})
        nodes.append(
            {"name": "model_node", "interface": f"{ACCOUNT}::SQUEEZENET_PYTORCH.interface"}
        )
    packages.append({"name": "panorama::abstract_rtsp_media_source", "version": "1.0"})
    for cam in cameras:
        nodes.append(
            {
                "name": cam,
                "interface": "panorama::abstract_rtsp_media_source.rtsp_v1_interface",
                "overridable": True,
                "launch": (launches or {}).get(cam, "onAppStart"),
            }
        )
        edges.append({"producer": f"{cam}.video_out", "consumer": "code_node.video_in"})
    if output:
        packages.append({"name": "panorama::hdmi_data_sink", "version": "1.0"})
        nodes.append({"name": "output_node", "interface": "panorama::hdmi_data_sink.hdmi0"})
        edges.append({"producer": "code_node.video_out", "consumer": "output_node.video_in"})
    for name, (ptype, value) in params.items():
        pname = f"{name}_param"
        nodes.append({"name": pname, "interface": ptype, "value": value, "overridable": True})
        edges.append({"producer": pname, "consumer": f"code_node.{name}"})
    graph = {
        "nodeGraph": {
            "envelopeVersion": "2021-01-01",
            "packages": packages,
            "nodes": nodes,
            "edges": edges,
        }
    }
    if routing:
        graph["nodeGraph"]["networkRoutingRules"] = routing
    _write(root / "graphs" / "app" / "graph.json", graph)
    return root


def classes_json(n: int = 1000) -> str:
    return json.dumps([f"n{i:08d} class_{i}" for i in range(n)])


def start_runtime(tmp: Path, project: Path, cameras: dict[str, list[str]], **kw):
    """A Runtime over the project's only graph, with work, output and storage in tmp."""
    from panoptes.runtime import Runtime, make_plan
    from panoptes.spec import resolve

    app = resolve(project / "graphs/app/graph.json", None, project / "packages", deployment=False)
    plan = make_plan(app, project, cameras)
    return Runtime(plan, tmp / "work", output_dir=tmp / "out", storage_dir=tmp / "storage", **kw)


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; AssertionError naming ``what`` after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# --- the live output ---------------------------------------------------------------


def read_mjpeg(url: str, parts: int, timeout: float = 10.0) -> list[bytes]:
    """The first ``parts`` JPEG bodies of a multipart/x-mixed-replace stream."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r:
        ctype = r.headers["Content-Type"]
        assert ctype.startswith("multipart/x-mixed-replace"), ctype
        boundary = b"--" + ctype.split("boundary=")[1].strip().encode()
        out: list[bytes] = []
        while len(out) < parts:
            line = r.readline()
            if not line:
                break
            if line.strip() != boundary:
                continue
            headers = {}
            while (line := r.readline().strip()) != b"":
                key, _, value = line.decode().partition(":")
                headers[key.strip().lower()] = value.strip()
            assert headers.get("content-type") == "image/jpeg", headers
            out.append(r.read(int(headers["content-length"])))
        return out
