"""Wire formats for the emulators: botocore's own service models decide routes and encodings,
so a request that boto3 sends is read exactly as AWS would read it."""

from __future__ import annotations

import io
import json
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, ShapeResolver, StructureShape
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer


@cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


@cache
def rest_routes(name: str) -> dict[str, str]:
    """``requestUri`` → operation name, for REST services whose routes have no labels."""
    model = service_model(name)
    return {model.operation_model(op).http["requestUri"]: op for op in model.operation_names}


def operation(name: str, op: str) -> OperationModel:
    return service_model(name).operation_model(op)


def decode_cbor(body: bytes) -> Any:
    if not body:
        return {}
    parser: Any = RpcV2CBORParser()
    return parser.parse_data_item(io.BufferedReader(io.BytesIO(body)))


def encode_cbor(service: str, op: str, value: dict[str, Any]) -> bytes:
    out = bytearray()
    shape = operation(service, op).output_shape
    serializer: Any = RpcV2CBORSerializer()
    if shape is not None:
        serializer._serialize_data_item(out, value, shape)
    return bytes(out)


def encode_cbor_error(code: str, message: str) -> bytes:
    out = bytearray()
    serializer: Any = RpcV2CBORSerializer()
    # An error body is a map of strings; serialize it with a synthetic structure shape.
    model: Any = {
        "type": "structure",
        "members": {"__type": {"shape": "S"}, "message": {"shape": "S"}},
    }
    shape = StructureShape("Error", model, ShapeResolver({"S": {"type": "string"}}))  # type: ignore[dict-item]
    serializer._serialize_data_item(out, {"__type": code, "message": message}, shape)
    return bytes(out)


def rest_json_error_status(service: str, code: str) -> int:
    shape = service_model(service).shape_for(code)
    return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))


def json_body(body: bytes) -> dict[str, Any]:
    return dict(json.loads(body)) if body.strip() else {}
