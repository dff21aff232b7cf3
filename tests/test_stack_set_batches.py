"""New accounts waiting on a StackSet share one CreateStackInstances (the StackSet batcher): AWS
runs one operation per StackSet at a time, so without batching each request's operation queued
behind the others'."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.client import Client

from common.codec import data_converter
from common.stack_set_batches import BATCHER_ID
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, codec_settings, eventually_async
from workflows.stack_set_batcher import StackSetBatcher

Body = Callable[..., dict[str, Any]]
STACK_SET = "vend-audit-role"


def _detail(req: dict[str, Any]) -> str:
    return str(next(s for s in req["steps"] if s["name"] == "apply_baselines")["detail"])


async def test_requests_waiting_on_a_stack_set_share_one_operation(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    client = await Client.connect(
        stack.config.temporal_address, data_converter=data_converter(codec_settings(stack))
    )
    batcher = client.get_workflow_handle_for(StackSetBatcher.run, BATCHER_ID)
    # The first request's operation is held, as a real one runs for minutes: the requests that
    # reach the StackSet meanwhile wait for it together.
    sandbox.fault(
        service="cloudformation", action="CreateStackInstances", hold=True, match=STACK_SET, times=1
    )
    bodies = [new_body(organizational_unit="Sandbox", environment="sandbox") for _ in range(4)]
    first = api.create("alice", bodies[0]).json()["id"]

    async def held() -> int:
        return int(sandbox.state()["held"]["cloudformation"])

    await eventually_async(held, lambda n: n >= 1, "the first operation held", 90)
    others = [api.create("alice", body).json()["id"] for body in bodies[1:]]
    await eventually_async(
        lambda: batcher.query(StackSetBatcher.status),
        lambda status: status.queued.get(STACK_SET, 0) >= len(others),
        "the other requests queued for the StackSet",
        90,
    )
    assert sandbox.release() >= 1

    done = [api.wait_for(r, {"completed"}, timeout=120) for r in [first, *others]]
    for req in done:
        instances = sandbox.stack_instances(STACK_SET, req["account_id"])
        assert [(i["Region"], i["Status"]) for i in instances] == [("us-east-1", "CURRENT")]
    assert _detail(done[0]) == f"deployed {STACK_SET}"
    shared = {_detail(req) for req in done[1:]}
    # One operation for the three, each told so; not the first request's operation.
    assert len(shared) == 1, shared
    assert "shared with 2 other accounts" in shared.pop()
