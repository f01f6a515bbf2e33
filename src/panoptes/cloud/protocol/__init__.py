"""AWS wire protocols driven by botocore service models, and SigV4 verification.

Public surface: the model loader (``load_service_model``, ``data_path``); the
protocols (``RestJsonProtocol``, ``JsonRpcProtocol``, ``RestXmlProtocol``); the S3
front over an ObjectStore (``S3Front``); and ``sigv4``. The ASGI app that strings
them together is ``panoptes.cloud.app``.
"""

from panoptes.cloud.protocol.jsonrpc import JsonRpcProtocol
from panoptes.cloud.protocol.models import data_path, load_service_model
from panoptes.cloud.protocol.restjson import RestJsonProtocol
from panoptes.cloud.protocol.restxml import RestXmlProtocol
from panoptes.cloud.protocol.s3front import S3Front
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse

__all__ = [
    "JsonRpcProtocol",
    "RestJsonProtocol",
    "RestXmlProtocol",
    "S3Front",
    "WireError",
    "WireRequest",
    "WireResponse",
    "data_path",
    "load_service_model",
]
