"""What moto's Identity Store answers lacks: members the service model now requires.

The model requires ``GroupArn`` and ``UserArn`` beside each group's and user's id, and a
``Revision`` on described and created ones; moto answers neither, so an answer could not come
from AWS (``sandbox/aws/contract.py`` says so). They are filled in here, in the model's form
(``arn:aws:identitystore:::group/<id>``; revisions count from 1), before the answer leaves.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.model import ListShape, Shape, StructureShape

from sandbox.aws.protocols import operation

_ARNS = {"GroupId": ("GroupArn", "group"), "UserId": ("UserArn", "user")}


def complete(action: str, body: bytes) -> bytes:
    """The answer with every required ARN and revision the model asks for."""
    try:
        output = operation("identitystore", action).output_shape
        answer = json.loads(body) if body.strip() else {}
    except Exception:  # not an operation of the model, or not JSON: as moto said
        return body
    if output is None or not isinstance(answer, dict):
        return body
    _fill(output, answer)
    return json.dumps(answer).encode()


def _fill(shape: Shape, value: Any) -> None:
    if isinstance(shape, ListShape) and isinstance(value, list):
        for item in value:
            _fill(shape.member, item)
        return
    if not isinstance(shape, StructureShape) or not isinstance(value, dict):
        return
    required = set(shape.required_members)
    for id_name, (arn_name, kind) in _ARNS.items():
        if arn_name in required and arn_name not in value and value.get(id_name):
            value[arn_name] = f"arn:aws:identitystore:::{kind}/{value[id_name]}"
    if "Revision" in required and "Revision" not in value:
        value["Revision"] = "1"
    for name, member in shape.members.items():
        if name in value:
            _fill(member, value[name])
