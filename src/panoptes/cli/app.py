"""`panoptes app`: panorama-cli's developer commands, offline and without AWS.

package-application is the one that talks to a service (a Panoptes `serve`).

Thin layer: parse options, call panoptes.project, print with rich. Every
ProjectError becomes "error: ... / fix: ..." on stderr and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from panoptes import project as proj
from panoptes.cli.run import run as _run_command
from panoptes.project.layout import ACCOUNT_ENV, DEFAULT_ACCOUNT
from panoptes.project.source_asset import default_platform

app_cli = typer.Typer(
    name="app",
    help=(
        "Build Panorama application projects: the panorama-cli commands "
        "(init-project, create-package, add-panorama-package, add-raw-model, "
        "build-container, export-container, import-application), offline; "
        "package-application uploads to a Panoptes service."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

# ---- shared options -------------------------------------------------------------------

ProjectDir = Annotated[
    Path,
    typer.Option(
        "--project-dir",
        help="Project folder (default: the current folder, as panorama-cli requires).",
        show_default=False,
    ),
]
AccountId = Annotated[
    str,
    typer.Option(
        "--account-id",
        envvar=ACCOUNT_ENV,
        help=(
            "12-digit account id used in package folder names and ACCOUNT::NAME references. "
            "panorama-cli asked AWS for the caller's account; there is no AWS here, so it "
            f"comes from this option, else ${ACCOUNT_ENV}, else {DEFAULT_ACCOUNT}."
        ),
    ),
]


def _epilog(*lines: str) -> str:
    # Rich help joins single newlines; blank lines keep each example on its own line.
    return "\n\n".join(lines)


# ---- output helpers -------------------------------------------------------------------


class _RichProgress:
    """panoptes.project.Progress backed by one rich progress display on stderr."""

    def __init__(self) -> None:
        self._p = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            # Not a terminal (CI, pipes): no live display, no stray blank lines.
            disable=not err.is_terminal,
        )

    def __enter__(self) -> _RichProgress:
        self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._p.stop()

    @contextmanager
    def task(self, label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        tid = self._p.add_task(label, total=total)
        try:
            yield lambda n: self._p.advance(tid, n)
        finally:
            self._p.remove_task(tid)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected failures into a message and exit code 1, never a traceback."""
    try:
        yield
    except proj.ProjectError as e:
        err.print(f"[bold red]error:[/] {escape(e.message)}", markup=True, highlight=False)
        if e.hint:
            err.print(f"[bold]fix:[/] {escape(e.hint)}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"[bold red]error:[/] {escape(where + str(e.strerror or e))}", markup=True)
        err.print("[bold]fix:[/] check the path and its permissions", markup=True)
        raise typer.Exit(1) from None


def _say(text: str) -> None:
    out.print(text, markup=False)


def _notes(notes: list[str]) -> None:
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}", markup=True)


def _block(asset: dict[str, Any]) -> None:
    # Plain JSON on stdout, like panorama-cli: copy-pasteable into package.json.
    typer.echo(json.dumps(asset, indent=4))


def _project(path: Path) -> proj.Project:
    return proj.Project.at(path)


# ---- commands -------------------------------------------------------------------------


@app_cli.command(
    "init-project",
    epilog=_epilog(
        "Example: panoptes app init-project --name my-app",
        "Differs from panorama-cli: an existing folder is an error (exit 1), not a message "
        "with exit 0.",
    ),
)
def init_project(
    name: Annotated[str, typer.Option("--name", help="Name of the project folder and graph.")],
    parent: Annotated[
        Path, typer.Option("--parent-dir", help="Where to create the project.", show_default=False)
    ] = Path("."),
) -> None:
    """Create a project folder: graphs/NAME/graph.json, packages/, assets/."""
    with _user_errors():
        root = proj.init_project(parent, name)
    _say(f"Successfully created the project skeleton at {root.resolve()}")


@app_cli.command(
    "create-package",
    help=_epilog(
        "Create packages/ACCOUNT-NAME-VERSION and list it in the graph.",
        "Container: package.json, descriptor.json, Dockerfile and src/. Model: package.json "
        "and descriptor.json. Camera/Datasink: a package with the RTSP camera / HDMI sink "
        "interface, plus a graph node using it.",
    ),
    epilog=_epilog(
        "Example: panoptes app create-package --name SAMPLE_CODE --type Container",
        "Example: panoptes app create-package --name MODEL --type Model --version 1.0",
        "Differs from panorama-cli: no cloud call (it treated any AWS API error as "
        "'package missing'); the package goes into every graph folder, not only the first; "
        "an existing package folder is an error (exit 1).",
    ),
)
def create_package(
    name: Annotated[str, typer.Option("--name", help="Name of the package.")],
    type_: Annotated[
        str, typer.Option("--type", help="Container (default), Model, Camera or Datasink.")
    ] = "Container",
    version: Annotated[
        str, typer.Option("--version", help="Package version, MAJOR.MINOR.")
    ] = "1.0",
    account_id: AccountId = DEFAULT_ACCOUNT,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Create packages/ACCOUNT-NAME-VERSION and list it in the graph."""
    with _user_errors():
        created = proj.create_package(_project(project_dir), name, type_, version, account_id)
    _say(f"Successfully created package {name} at {created.path}")
    if created.node:
        _say(f"Added node {created.node} to {len(created.graphs)} graph(s)")


@app_cli.command(
    "add-panorama-package",
    help=_epilog(
        "Add a Panorama-provided package and a node for it to the graph.",
        "camera: panorama::abstract_rtsp_media_source 1.0 (interface rtsp_v1_interface, "
        "overridable, so the camera is chosen at deployment). data_sink: "
        "panorama::hdmi_data_sink 1.0 (interface hdmi0).",
    ),
    epilog=_epilog(
        "Example: panoptes app add-panorama-package --type camera --name camera_node",
        "Example: panoptes app add-panorama-package --type data_sink --name output_node",
        "Differs from panorama-cli: every graph folder is updated, not only the first; a "
        "taken node name is an error (exit 1) instead of a message with exit 0.",
    ),
)
def add_panorama_package(
    type_: Annotated[str, typer.Option("--type", help="camera or data_sink.")],
    name: Annotated[str, typer.Option("--name", help="Name of the graph node.")],
    project_dir: ProjectDir = Path("."),
) -> None:
    """Add a Panorama-provided package and a node for it to the graph."""
    with _user_errors():
        graphs = proj.add_panorama_package(_project(project_dir), type_, name)
    _say(f"Added {type_} node {name} to {len(graphs)} graph(s)")


@app_cli.command(
    "add-raw-model",
    help=_epilog(
        "Store a model and its descriptor in assets/ under their sha256 and record them.",
        "Updates the package.json assets block in place (adding an ml_model interface and a "
        "graph node for a new asset) and removes superseded asset files.",
    ),
    epilog=_epilog(
        "Example: panoptes app add-raw-model --model-asset-name model_asset "
        "--model-local-path squeezenet.tar.gz "
        "--descriptor-path packages/123456789012-SQUEEZENET_PYTORCH-1.0/descriptor.json "
        "--packages-path packages/123456789012-SQUEEZENET_PYTORCH-1.0",
        "Differs from panorama-cli: a bad descriptor exits 1 naming file:line (it exited 0); "
        "old asset files are kept while another package still references them; --model-s3-uri "
        "is not downloaded (no AWS).",
    ),
)
def add_raw_model(
    model_asset_name: Annotated[
        str, typer.Option("--model-asset-name", help="Asset name in package.json.")
    ],
    descriptor_path: Annotated[
        Path, typer.Option("--descriptor-path", help="The model's descriptor.json.")
    ],
    model_local_path: Annotated[
        Path | None,
        typer.Option(
            "--model-local-path",
            help=(
                "Model archive (.tar.gz) or bare .onnx file. The archive must hold a model "
                "of the descriptor's framework: PYTORCH a TorchScript .pth/.pt; TENSORFLOW a "
                "SavedModel (saved_model.pb), .keras/.h5 or .tflite; .onnx under any (MXNET: "
                "export to ONNX). It is checked before anything is written: with the "
                "framework's converter installed, by running it once on the descriptor's "
                "input shapes."
            ),
        ),
    ] = None,
    model_s3_uri: Annotated[
        str | None,
        typer.Option(
            "--model-s3-uri",
            help="Not available yet (no object store configured): download the object "
            "yourself and pass --model-local-path.",
        ),
    ] = None,
    packages_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--packages-path",
            help="Package folder to record the asset in; repeat the option for several. "
            "Without it the asset block is only printed.",
        ),
    ] = None,
    account_id: AccountId = DEFAULT_ACCOUNT,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Store a model and its descriptor in assets/ under their sha256 and record them."""
    with _user_errors():
        if (model_local_path is None) == (model_s3_uri is None):
            raise proj.ProjectError(
                "give exactly one of --model-local-path and --model-s3-uri",
                "pass --model-local-path FILE",
            )
        if model_s3_uri is not None:
            raise proj.ProjectError(
                f"--model-s3-uri {model_s3_uri}: Panoptes has no S3 and no object store is "
                "configured",
                "download the object (e.g. `aws s3 cp URI model.tar.gz`) and pass "
                "--model-local-path model.tar.gz",
            )
        assert model_local_path is not None
        project = _project(project_dir)
        with _RichProgress() as progress:
            added = proj.add_raw_model(
                project,
                model_asset_name,
                model_local_path,
                descriptor_path,
                list(packages_path or []),
                account_id,
                progress,
            )
    _notes(added.notes)
    for uri in added.removed:
        _say(f"Deleted old asset {uri}")
    if not added.packages:
        _say("Copy the following in the assets section of package.json")
    _block(added.asset)
    _say(f"Successfully added the model to {added.model_path}")


Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        help="auto: Docker, else Podman, if `<engine> info` answers, else a source asset; "
        "docker/podman: require that engine; none: always a source asset.",
    ),
]


def _print_built(built: proj.BuiltContainer) -> None:
    for cmd in built.commands:
        _say(cmd)
    _notes(built.notes)
    for uri in built.removed:
        _say(f"Deleted old asset {uri}")
    _block(built.asset)
    what = "Container asset" if built.kind == "image" else "Source asset (no container engine)"
    _say(f"{what} for the package has been successfully built at {built.asset_path}")


@app_cli.command(
    "build-container",
    help=_epilog(
        "Build the code package into a container asset and record it in package.json.",
        "With a Docker/Podman engine that answers: docker build, then export the container's "
        "root filesystem to assets/<sha256>.tar.gz. Without one: a reproducible source asset "
        "(the files the Dockerfile COPYs/ADDs, requirements.txt, a wheelhouse/ for --platform"
        " and panoptes-asset.json), whose implementation description starts with "
        '"panoptes-source-asset". descriptor.json is stored as assets/<sha256>.json.',
    ),
    epilog=_epilog(
        "Example: panoptes app build-container --container-asset-name code_asset "
        "--package-path packages/123456789012-SAMPLE_CODE-1.0",
        "Offline: ... --find-links ./wheels --no-index ; without wheels: --no-wheelhouse",
        "Differs from panorama-cli: works without Docker (source asset); JSON errors exit 1 "
        "naming file:line (it exited 0); the exported container is removed afterwards.",
    ),
)
def build_container(
    container_asset_name: Annotated[
        str, typer.Option("--container-asset-name", help="Asset name in package.json.")
    ],
    package_path: Annotated[
        Path, typer.Option("--package-path", help="The code package folder (has a Dockerfile).")
    ],
    local_image: Annotated[
        bool,
        typer.Option("--local-image", help="Engine builds: use local base images, don't --pull."),
    ] = False,
    engine: Engine = "auto",
    platform: Annotated[
        str,
        typer.Option("--platform", help="Source asset: wheel platform of the device."),
    ] = default_platform(),
    no_wheelhouse: Annotated[
        bool, typer.Option("--no-wheelhouse", help="Source asset: don't download wheels.")
    ] = False,
    find_links: Annotated[
        list[Path] | None,
        typer.Option("--find-links", help="Source asset: extra wheel folder for pip; repeatable."),
    ] = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="Source asset: pip uses only --find-links.")
    ] = False,
    account_id: AccountId = DEFAULT_ACCOUNT,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Build the code package into a container asset and record it in package.json."""
    with _user_errors():
        project = _project(project_dir)
        options = proj.SourceOptions(platform, not no_wheelhouse, list(find_links or []), no_index)
        with _RichProgress() as progress:
            built = proj.build_container(
                project,
                container_asset_name,
                package_path,
                account_id,
                local_image,
                engine,
                options,
                progress,
            )
    _print_built(built)


@app_cli.command(
    "export-container",
    epilog=_epilog(
        "Example: panoptes app export-container --container-asset-name code_asset "
        "--container-image-uri my-registry/app:1.2 "
        "--package-path packages/123456789012-SAMPLE_CODE-1.0",
        "Example (no engine): docker export made rootfs.tar elsewhere: "
        "--container-image-uri rootfs.tar",
        "Differs from panorama-cli: a local .tar/.tar.gz root filesystem is accepted without "
        "an engine; no engine is a clear error (exit 1).",
    ),
)
def export_container(
    container_asset_name: Annotated[
        str, typer.Option("--container-asset-name", help="Asset name in package.json.")
    ],
    container_image_uri: Annotated[
        str,
        typer.Option(
            "--container-image-uri",
            help="A pre-built image (needs an engine) or a `docker export` .tar/.tar.gz file.",
        ),
    ],
    package_path: Annotated[Path, typer.Option("--package-path", help="The code package folder.")],
    engine: Engine = "auto",
    account_id: AccountId = DEFAULT_ACCOUNT,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Export a pre-built container image to the package's container asset."""
    with _user_errors():
        project = _project(project_dir)
        with _RichProgress() as progress:
            built = proj.export_container(
                project,
                container_asset_name,
                container_image_uri,
                package_path,
                account_id,
                engine,
                progress,
            )
    _print_built(built)


@app_cli.command(
    "import-application",
    help=_epilog(
        "Move an application made under another account to --account-id.",
        "Renames packages/OLD-NAME-VERSION folders and rewrites OLD:: in packages[].name and "
        "nodes[].interface of graph.json and every override *.json under graphs/.",
    ),
    epilog=_epilog(
        "Example: panoptes app import-application --account-id 210987654321",
        "Example: panoptes app import-application --account-id 210987654321 "
        "--from-account 123456789012",
        "Differs from panorama-cli: only ACCOUNT:: fields are rewritten (it did a blind string "
        "replace), in every graph folder (it used the first) and override file (it skipped "
        "them); a JSON error exits 1 naming file:line (it exited 0); writes are atomic.",
    ),
)
def import_application(
    account_id: AccountId = DEFAULT_ACCOUNT,
    from_account: Annotated[
        str | None,
        typer.Option(
            "--from-account",
            help="Account id to replace; needed only when the project carries several.",
        ),
    ] = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Move an application made under another account to --account-id."""
    with _user_errors():
        result = proj.import_application(_project(project_dir), account_id, from_account)
    _notes(result.notes)
    for old, new in result.folders:
        _say(f"Renamed packages/{old} -> packages/{new}")
    for path in result.files:
        _say(f"Rewrote {path}")
    if result.old and result.old != result.new:
        _say(f"Successfully imported application: account {result.old} -> {result.new}")


@app_cli.command(
    "package-application",
    help=_epilog(
        "Upload every package's assets and package.json to the service and register them.",
        "For each packages/ACCOUNT-NAME-VERSION folder: find the package (create it when "
        "missing), take the SHA-256 of package.json as the patch version, upload the asset "
        "files it names from assets/ (unless the bucket has them) and package.json, register "
        "the patch as latest, wait for REGISTER_COMPLETED and deregister the patch it "
        "replaces. A package whose latest patch is this one is skipped. Camera and data-sink "
        "packages have only system assets: they are registered with nothing to upload.",
        "Service: by default the one `panoptes serve` runs from the data dir (its endpoint "
        "and admin key); with --endpoint-url or --profile, standard AWS credential "
        "resolution. Panoptes' Panorama API model is always used.",
    ),
    epilog=_epilog(
        "Example: panoptes app package-application",
        "Example: panoptes app package-application --endpoint-url http://panoptes:8080 "
        "--profile panoptes",
        "Differs from panorama-cli: only 'not found' means 'create the package'; any other "
        "API error stops with exit 1 (it treated every error as 'package missing'); every "
        "asset file is checked before the first upload; waiting for registration has a "
        "timeout (it polled forever); a failure keeps the previous patch as latest.",
    ),
)
def package_application(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data dir of the local `panoptes serve` (default: ~/.local/share/panoptes).",
            show_default=False,
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="Service URL; credentials from AWS settings."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile for credentials/endpoint.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region.")] = None,
    packages_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--packages-path", help="Upload only this package folder; repeat for several."
        ),
    ] = None,
    wait_timeout: Annotated[
        float,
        typer.Option("--wait-timeout", help="Seconds to wait for each registration to complete."),
    ] = 600.0,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Upload the packages' assets and manifests and register them with the service."""
    from panoptes.project import package_app

    with _user_errors():
        if data_dir is not None and (endpoint_url or profile):
            raise proj.ProjectError(
                "--data-dir picks the local service; --endpoint-url/--profile pick another",
                "give one of them",
            )
        project = _project(project_dir)
        clients = package_app.connect(data_dir, endpoint_url, profile, region)
        with _RichProgress() as progress:
            result = package_app.package_application(
                project,
                clients,
                list(packages_path or []),
                say=_say,
                progress=progress,
                wait_timeout=wait_timeout,
            )
    _notes(result.notes)


# `panoptes app run` lives in its own module (it drives the runtime, not project/).
app_cli.command(
    "run",
    epilog=_epilog(
        "Example: panoptes app run --camera camera_node=clip.mp4 --max-frames 300",
        "Replaces AWS's test utility, which was a simulator: this is the device's runtime.",
    ),
)(_run_command)
