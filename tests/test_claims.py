"""A finished request leaves no workflow that looks like a failure.

Its claims (on the account name and email) end *completed*, with a result that says why, when the
request closes, instead of being terminated by the parent close policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from common.codec import data_converter
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, codec_settings
from workflows.claim import claim_id

Body = Callable[..., dict[str, Any]]


async def test_claims_end_completed_when_the_request_closes(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = api.create("alice", body).json()
    await asyncio.to_thread(api.wait_for, req["id"], {"completed"})
    client = await Client.connect(
        stack.config.temporal_address, data_converter=data_converter(codec_settings(stack))
    )
    for kind, value in (("name", body["account_name"]), ("email", body["account_email"])):
        handle = client.get_workflow_handle(claim_id(kind, value))
        for _ in range(100):  # the cancel request reaches the claim just after the request closes
            described = await handle.describe()
            if described.status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.1)
        assert described.status == WorkflowExecutionStatus.COMPLETED, (kind, described.status)
        assert await handle.result() == f"released: request {req['id']} closed"
