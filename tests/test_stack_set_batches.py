"""New accounts waiting on a StackSet share one CreateStackInstances (the StackSet batcher): AWS
runs one operation per StackSet at a time, so without batching each request's operation queued
behind the others'."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from temporalio.client import Client

from common.codec import data_converter
from common.stack_set_batches import BATCHER_ID
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, codec_settings
from tests.waiting import eventually_async
from workflows.stack_set_batcher import StackSetBatcher

Body = Callable[..., dict[str, Any]]
STACK_SET = "vend-audit-role"


def _detail(req: dict[str, Any]) -> str:
    return str(next(s for s in req["steps"] if s["name"] == "apply_baselines")["detail"])


def _operation(req: dict[str, Any]) -> str | None:
    """The shared operation a request's baseline step names; None when it ran one of its own."""
    found = re.search(r"\(operation ([^,]+), shared with", _detail(req))
    return found.group(1) if found else None


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
    # The three that came during the hold share one operation, each told so. The held operation
    # is the first one that reached the StackSet: the first request's, unless a request another
    # test left running got there first, in which case the first request waited with the three.
    first_op, *other_ops = (_operation(req) for req in done)
    assert len(set(other_ops)) == 1 and other_ops[0] is not None, [_detail(r) for r in done]
    if first_op is None:
        assert _detail(done[0]) == f"deployed {STACK_SET}"
        assert all("shared with 2 other accounts" in _detail(req) for req in done[1:])
    else:
        assert first_op == other_ops[0], [_detail(r) for r in done]
        assert all("shared with 3 other accounts" in _detail(req) for req in done)
