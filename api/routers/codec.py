"""The remote codec endpoint the Temporal UI calls to show decrypted payloads.

Temporal's codec-server protocol: ``POST {endpoint}/decode`` (and ``/encode``) with
``{"payloads": [...]}`` in protobuf JSON, answered in kind. Decrypting is a privilege (it reveals
request data), so by default it takes an operator's or admin's token, which the UI forwards when
it is configured to pass its access token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from google.protobuf.json_format import ParseError
from temporalio.api.common.v1 import Payloads

from api.deps import LimiterDep, SettingsDep, _bearer, current_user, get_verifier, require
from api.errors import Problem
from api.openapi import problems
from common.auth import TokenVerifier
from common.codec import CodecError, EncryptionCodec
from common.models import Role

router = APIRouter(
    prefix="/codec", tags=["codec"], responses=problems(400, 401, 403, 413, 422, 429)
)


async def _codec_user(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    verifier: Annotated[TokenVerifier, Depends(get_verifier)],
    limiter: LimiterDep,
) -> None:
    if not settings.codec.endpoint_requires_token:
        return
    user = await current_user(credentials, verifier, limiter)
    await require(Role.operator)(user)


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec | None = request.app.state.codec
    if codec is None:
        raise Problem(404, "Not found", "payload encryption is not configured")
    return codec


async def _payloads(request: Request) -> Payloads:
    try:
        return json_format.Parse(await request.body(), Payloads())
    except (ParseError, UnicodeDecodeError) as err:
        raise Problem(400, "Bad request", f"not a Payloads JSON document: {err}") from err


def _answer(payloads: Payloads) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(payloads)
    out.setdefault("payloads", [])
    return out


@router.post("/decode", dependencies=[Depends(_codec_user)], responses=problems(404))
async def decode(request: Request) -> dict[str, Any]:
    """Decrypt payloads for display (unencrypted ones pass through unchanged)."""
    codec, payloads = _codec(request), await _payloads(request)
    try:
        decoded = await codec.decode(payloads.payloads)
    except CodecError as err:
        raise Problem(422, "Invalid request", str(err), kind="undecryptable") from err
    return _answer(Payloads(payloads=decoded))


@router.post("/encode", dependencies=[Depends(_codec_user)], responses=problems(404))
async def encode(request: Request) -> dict[str, Any]:
    """Encrypt payloads (the UI uses it to send signals and updates with typed input)."""
    codec, payloads = _codec(request), await _payloads(request)
    return _answer(Payloads(payloads=await codec.encode(payloads.payloads)))
