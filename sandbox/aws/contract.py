"""Every answer the sandbox gives, held to botocore's output shape for its operation.

The engine's code is proven against the sandbox, so an answer AWS could not give (a member the
model does not have, a required member missing, a value outside an enum, a string where a number
belongs) proves nothing. Each successful answer is read the way its client reads it and walked
against the operation's output shape; what does not fit is recorded as a violation, which the
test that caused it fails on (``tests/conftest.py``). For JSON, REST-JSON and CBOR answers the
raw document is walked, so unknown members are seen; XML answers (query, EC2) are walked as
botocore parses them, which drops unknown elements but keeps every other check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import UnknownServiceError
from botocore.model import ListShape, MapShape, OperationNotFoundError, Shape, StructureShape
from botocore.parsers import create_parser

from sandbox.aws.protocols import decode_cbor, service_model

# Signing names that differ from the botocore service name.
SERVICES = {"sso": "sso-admin"}
_RAW = {"json", "rest-json", "smithy-rpc-v2-cbor"}
_NOT_IN_BODY = {"header", "headers", "statusCode"}


@dataclass(frozen=True)
class Violation:
    service: str
    action: str
    path: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check(
    signing_name: str, action: str, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> list[Violation]:
    """The ways this answer differs from what the operation's output shape allows."""
    if status >= 300:
        return []  # errors have shapes of their own: the fault tests read them as clients do
    name = SERVICES.get(signing_name, signing_name)
    try:
        model = service_model(name)
        output = model.operation_model(action).output_shape
    except (UnknownServiceError, OperationNotFoundError, KeyError):
        return []
    if output is None:
        return []
    try:
        value, raw = _read(model.protocol, status, dict(headers), body, output)
    except Exception as err:  # an answer its client could not even read
        return [Violation(name, action, "", f"unreadable as {model.protocol}: {err}")]
    found: list[Violation] = []
    _walk(
        output,
        value,
        "",
        raw,
        model.protocol,
        lambda p, m: found.append(Violation(name, action, p, m)),
    )
    return found


def _read(
    protocol: str, status: int, headers: dict[str, str], body: bytes, output: Shape
) -> tuple[Any, bool]:
    if protocol in _RAW:
        # A service with several protocols (Service Catalog: JSON 1.1 or RPC v2 CBOR) answers in
        # the one the client chose: read what the answer says it is.
        kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if "cbor" in kind:
            return decode_cbor(body), True
        return (json.loads(body) if body.strip() else {}), True
    parser = create_parser(protocol)
    parsed = parser.parse({"body": body, "headers": headers, "status_code": status}, output)
    parsed.pop("ResponseMetadata", None)
    return parsed, False


def _walk(shape: Shape, value: Any, path: str, raw: bool, protocol: str, bad: Any) -> None:
    if isinstance(shape, StructureShape) and shape.is_document_type:
        return  # a document: any JSON value
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            bad(path, f"expected a structure ({shape.name}), got {type(value).__name__}")
            return
        in_body = {
            n: m
            for n, m in shape.members.items()
            if not (protocol == "rest-json" and m.serialization.get("location") in _NOT_IN_BODY)
        }
        for member in shape.required_members:
            if member in in_body and member not in value:
                bad(f"{path}.{member}", "required member missing")
        for key, item in value.items():
            if key not in in_body:
                if raw and key != "__type":
                    bad(f"{path}.{key}", f"not a member of {shape.name}")
                continue
            if item is not None:
                _walk(in_body[key], item, f"{path}.{key}", raw, protocol, bad)
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            bad(path, f"expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", raw, protocol, bad)
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            bad(path, f"expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _walk(shape.value, item, f"{path}[{key}]", raw, protocol, bad)
    else:
        _scalar(shape, value, path, bad)


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float, str, datetime),
    "blob": (str, bytes, bytearray),
}


def _scalar(shape: Shape, value: Any, path: str, bad: Any) -> None:
    wanted = _TYPES.get(shape.type_name)
    if wanted is None:
        return
    wrong_bool = shape.type_name in ("integer", "long", "float", "double") and isinstance(
        value, bool
    )
    if wrong_bool or not isinstance(value, wanted):
        bad(path, f"expected {shape.type_name}, got {type(value).__name__} {value!r:.60}")
        return
    enum: list[str] = getattr(shape, "enum", [])
    if enum and isinstance(value, str) and value not in enum:
        bad(path, f"{value!r} is not one of {shape.name}'s values")
