"""No configured secret appears in any workflow history, process log or API response.

Suite audits (``suite_audit``): they run after every other test of their process, so they
search what that process's stack holds (under ``make test``'s three processes, the part of
the suite each ran); alone, they search a vend and decommission of their own. Payloads in a
history are base64-encoded JSON, so every payload is decoded before searching.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client

from common.codec import EncryptionCodec
from sandbox.stack import EmbeddedStack
from tests.conftest import LOGS, Api, codec_settings, plain_history_json


def _secrets(stack: EmbeddedStack) -> dict[str, str]:
    values = {
        "workload security api key": stack.secrets["ws_api_key"],
        "workload security activation token": stack.secrets["ws_activation_token"],
        "sunny pay api key": stack.secrets["sunnypay_api_key"],
        "webhook signing secret": stack.secrets["webhook_secret"],
        "dev token signing secret": (stack.config.data_dir / "dev-secret").read_text().strip(),
        "payload encryption key": stack.secrets["codec_key"],
        "cursor signing secret": stack.secrets["cursor_secret"],
    }
    assert all(len(v) >= 16 for v in values.values())
    return values


def _texts(node: Any) -> Iterator[str]:
    """Every string in a history, with payload data decoded."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                try:
                    yield base64.b64decode(value).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    yield value
            else:
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)
    elif isinstance(node, str):
        yield node


@pytest.mark.suite_audit
async def test_no_secret_in_any_workflow_history(stack: EmbeddedStack, audited_work: None) -> None:
    client = await Client.connect(stack.config.temporal_address)
    secrets = _secrets(stack)
    codec = EncryptionCodec.from_settings(codec_settings(stack))
    assert codec is not None
    histories = 0
    found: list[str] = []
    async for wf in client.list_workflows():
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        histories += 1
        # Decrypted first: a secret must not be in a history even under encryption.
        text = "\n".join(_texts(json.loads(plain_history_json(history, codec))))
        found += [f"{name} in {wf.id}" for name, value in secrets.items() if value in text]
    assert histories >= 2, "a vend leaves its request's and its account's workflows to search"
    assert found == []


@pytest.mark.suite_audit
def test_no_secret_in_any_process_log(stack: EmbeddedStack, audited_work: None) -> None:
    secrets = _secrets(stack)
    logs = list(LOGS.glob("*.log"))
    assert logs
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [name for name, value in secrets.items() if value in text]
        assert leaked == [], f"{leaked} in {path.name}"


@pytest.mark.suite_audit
def test_no_secret_in_api_responses(api: Api, stack: EmbeddedStack, audited_work: None) -> None:
    secrets = _secrets(stack)
    page = api.call("GET", "/v1/account-requests", "carol", params={"limit": 50})
    bodies = [page.text, api.call("GET", "/openapi.json", None).text]
    for item in page.json()["items"][:10]:
        bodies.append(api.get("carol", item["id"]).text)
        bodies.append(api.call("GET", f"/v1/account-requests/{item['id']}/events", "carol").text)
    for body in bodies:
        assert [n for n, v in secrets.items() if v in body] == []
