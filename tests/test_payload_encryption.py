"""Workflow payloads are encrypted before they reach Temporal; the UI reads them via /codec."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from common.codec import CodecError, EncryptionCodec, new_key
from common.settings import CodecSettings
from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, HttpEmulator, codec_settings, plain_history_json

Body = Callable[..., dict[str, Any]]


def _codec(keys: dict[str, str], active: str) -> EncryptionCodec:
    codec = EncryptionCodec.from_settings(
        CodecSettings(keys=keys, active_key_id=active)  # type: ignore[arg-type]
    )
    assert codec is not None
    return codec


def _payload_texts(node: Any) -> str:
    """Every payload's data, decoded, in one string."""
    if isinstance(node, dict):
        if "data" in node and "metadata" in node:
            return base64.b64decode(node["data"]).decode("utf-8", "replace")
        return "\n".join(_payload_texts(v) for v in node.values())
    if isinstance(node, list):
        return "\n".join(_payload_texts(v) for v in node)
    return ""


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_rotation_keeps_old_payloads_readable() -> None:
    k1, k2 = new_key(), new_key()
    old = _codec({"2026-10": k1}, "2026-10")
    sealed = (await old.encode([_payload("alice@example.com")]))[0]
    assert b"alice" not in sealed.data
    assert sealed.metadata["encryption-key-id"] == b"2026-10"
    rotated = _codec({"2026-10": k1, "2026-11": k2}, "2026-11")
    assert (await rotated.decode([sealed]))[0] == _payload("alice@example.com")
    assert (await rotated.encode([_payload("x")]))[0].metadata["encryption-key-id"] == b"2026-11"
    retired = _codec({"2026-11": k2}, "2026-11")
    with pytest.raises(CodecError, match="2026-10"):
        await retired.decode([sealed])


async def test_tampered_payloads_are_refused() -> None:
    codec = _codec({"k": new_key()}, "k")
    sealed = (await codec.encode([_payload("data")]))[0]
    sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecError, match="authentication"):
        await codec.decode([sealed])
    other = _codec({"k": new_key()}, "k")  # same key id, different key
    with pytest.raises(CodecError):
        await other.decode([(await codec.encode([_payload("data")]))[0]])


def test_bad_key_settings_fail_at_start() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _codec({"k": base64.b64encode(b"short").decode()}, "k")
    with pytest.raises(ValueError, match="active key"):
        _codec({"k": new_key()}, "other")


async def test_temporal_stores_only_ciphertext(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = api.create("alice", body).json()
    raw_client = await Client.connect(stack.config.temporal_address)  # no codec
    history = await raw_client.get_workflow_handle(workflow_id(req["id"])).fetch_history()
    raw = history.to_json()
    assert body["account_email"] not in raw
    assert base64.b64encode(body["account_email"].encode()).decode()[:12] not in raw
    codec = EncryptionCodec.from_settings(codec_settings(stack))
    assert codec is not None
    assert body["account_email"] in _payload_texts(json.loads(plain_history_json(history, codec)))


async def test_codec_endpoint_decodes_for_the_ui(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = api.create("alice", body).json()
    raw_client = await Client.connect(stack.config.temporal_address)
    history = await raw_client.get_workflow_handle(workflow_id(req["id"])).fetch_history()
    started = json.loads(history.to_json())["events"][0]
    payloads = started["workflowExecutionStartedEventAttributes"]["input"]
    ui = {"Origin": stack.config.ui_url, "X-Namespace": "default"}
    http = httpx.AsyncClient(base_url=stack.config.api_url)
    resp = await http.post("/codec/decode", json=payloads, headers=ui)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == stack.config.ui_url
    decoded = base64.b64decode(resp.json()["payloads"][0]["data"]).decode()
    assert body["account_email"] in decoded
    # And back: what /encode returns, /decode reads.
    again = await http.post("/codec/encode", json=resp.json(), headers=ui)
    assert (
        again.json()["payloads"][0]["metadata"]["encoding"]
        == base64.b64encode(b"binary/encrypted").decode()
    )
    garbage = await http.post("/codec/decode", content=b"{not json")
    assert garbage.status_code == 400
    assert garbage.headers["content-type"] == "application/problem+json"
    await http.aclose()


def test_codec_endpoint_needs_an_operator_where_configured(
    stack: EmbeddedStack, tokens: dict[str, str]
) -> None:
    from sandbox.stack import free_port

    port = free_port()
    proc = stack.start_api("api-codec", port, {"VEND_CODEC__ENDPOINT_REQUIRES_TOKEN": "true"})
    try:
        url = f"http://127.0.0.1:{port}/codec/decode"
        assert httpx.post(url, json={"payloads": []}).status_code == 401
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        assert httpx.post(url, json={"payloads": []}, headers=alice).status_code == 403
        carol = {"Authorization": f"Bearer {tokens['carol']}"}
        assert httpx.post(url, json={"payloads": []}, headers=carol).status_code == 200
    finally:
        proc.stop()


async def test_a_deployment_that_requires_encryption_refuses_plaintext() -> None:
    key = new_key()
    strict = EncryptionCodec.from_settings(
        CodecSettings(keys={"k": key}, require_encryption=True)  # type: ignore[dict-item]
    )
    assert strict is not None
    with pytest.raises(CodecError, match="plaintext"):
        await strict.decode([_payload("forged")])
    sealed = await strict.encode([_payload("fine")])
    assert (await strict.decode(sealed))[0] == _payload("fine")
    with pytest.raises(ValueError, match="no VEND_CODEC__KEYS"):
        EncryptionCodec.from_settings(CodecSettings(require_encryption=True))


async def test_failure_messages_are_ciphertext_in_history(
    api: Api, stack: EmbeddedStack, sunnypay: HttpEmulator, new_body: Body
) -> None:
    """A step's error quotes what AWS or a vendor said, emails and URLs included: in history it
    is encrypted like any payload (encoded failure attributes), and the API still shows it."""
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    secret_words = f"plan not offered to {body['account_email']}"
    sunnypay.fault(
        service="sunnypay",
        action="POST /v1/registrations",
        error="invalid",
        status=422,
        message=secret_words,
        match=body["account_name"],  # this request's registration, not another test's
        times=1,
    )
    req = api.create("alice", body).json()
    parked = api.wait_for(req["id"], {"waiting_for_operator"})
    failed = next(s for s in parked["steps"] if s["name"] == "register_billing")
    assert body["account_email"] in failed["error"]["message"]
    raw_client = await Client.connect(stack.config.temporal_address)  # no codec
    history = await raw_client.get_workflow_handle(workflow_id(req["id"])).fetch_history()
    raw = history.to_json()
    assert "ActivityTaskFailed" in raw or "activityTaskFailedEventAttributes" in raw
    assert body["account_email"] not in raw and "plan not offered" not in raw
    assert api.act("carol", req["id"], "cancel", {"reason": "test over"}).status_code == 200
