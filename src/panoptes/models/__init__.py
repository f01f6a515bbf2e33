"""Models: compile a Panorama model asset to ONNX, run it, serve it to code nodes.

    compiled = compile("model.tar.gz", descriptor, target="auto")   # cached
    session = open_session(compiled)                                   # ONNX Runtime
    with ModelServer(compiled, name="model_node") as server:           # separate process
        outputs = server.client().call({"data": image})

onnx, onnxruntime and numpy are needed; torch (PyTorch assets), tensorflow + tf2onnx
(TensorFlow/Keras/TFLite assets) and onnxconverter-common (FP16) are optional extras.
"""

from panoptes.models.archive import FRAMEWORKS, ModelSource, sha256_file
from panoptes.models.cache import CacheKey, ModelCache, default_root
from panoptes.models.compiler import (
    CompiledModel,
    ModelMetadata,
    check_model_archive,
    compile,
    model_descriptor,
)
from panoptes.models.errors import (
    ArchiveError,
    DescriptorMismatchError,
    MissingExtraError,
    ModelError,
    ModelInputError,
    ModelServerError,
    UnsupportedFrameworkError,
)
from panoptes.models.server import ModelClient, ModelServer
from panoptes.models.session import (
    PROVIDERS,
    TARGETS,
    best_target,
    default_threads,
    open_session,
    resolve_target,
    select_providers,
    session_options,
)
from panoptes.models.validate import TensorInfo

__all__ = [
    "FRAMEWORKS",
    "PROVIDERS",
    "TARGETS",
    "ArchiveError",
    "CacheKey",
    "CompiledModel",
    "DescriptorMismatchError",
    "MissingExtraError",
    "ModelCache",
    "ModelClient",
    "ModelError",
    "ModelInputError",
    "ModelMetadata",
    "ModelServer",
    "ModelServerError",
    "ModelSource",
    "TensorInfo",
    "UnsupportedFrameworkError",
    "best_target",
    "check_model_archive",
    "compile",
    "default_root",
    "default_threads",
    "model_descriptor",
    "open_session",
    "resolve_target",
    "select_providers",
    "session_options",
    "sha256_file",
]
