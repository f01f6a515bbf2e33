"""The project folder logic behind `panoptes app` (no CLI code, no network).

One module per concern: ``files`` (hashing, atomic JSON), ``layout`` (folder
names), ``templates``, ``graph``, ``scaffold`` (init/create), ``assets``
(package.json asset blocks), ``models`` (add-raw-model), ``dockerfile`` +
``source_asset`` + ``engine`` + ``containers`` (build/export-container) and
``accounts`` (import-application). ``package_app`` (package-application) is the
one module that talks to a service; import it explicitly (it pulls in boto3).
"""

from panoptes.project.accounts import Imported, import_application
from panoptes.project.containers import (
    BuiltContainer,
    SourceOptions,
    build_container,
    export_container,
)
from panoptes.project.errors import ProjectError
from panoptes.project.layout import Project, default_account
from panoptes.project.models import AddedModel, add_raw_model
from panoptes.project.progress import NO_PROGRESS, Progress
from panoptes.project.scaffold import (
    PACKAGE_TYPES,
    CreatedPackage,
    add_panorama_package,
    create_package,
    init_project,
)
from panoptes.spec import PackageRef

__all__ = [
    "NO_PROGRESS",
    "PACKAGE_TYPES",
    "AddedModel",
    "BuiltContainer",
    "CreatedPackage",
    "Imported",
    "PackageRef",
    "Progress",
    "Project",
    "ProjectError",
    "SourceOptions",
    "add_panorama_package",
    "add_raw_model",
    "build_container",
    "create_package",
    "default_account",
    "export_container",
    "import_application",
    "init_project",
]
