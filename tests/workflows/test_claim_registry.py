"""The claim registry, as a specification: one holder per account name, email or adopted
account; a key passes to another request only when its holder has ended; a sweep every half
hour drops the keys of holders that no longer run."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.temporal_checks import WorkflowIds
from common.claims import (
    HELD_QUERY,
    RELEASE_UPDATE,
    TAKE_UPDATE,
    RegistryState,
    Release,
    Take,
    Taken,
)
from tests.waiting import eventually_async
from tests.workflows.harness import QUEUE, worker
from workflows.claim_registry import ClaimRegistry


def _running(still: set[str], asked: list[list[str]]) -> object:
    @activity.defn(name="running_workflows")
    async def running_workflows(inp: WorkflowIds) -> WorkflowIds:
        asked.append(inp.ids)
        return WorkflowIds(ids=[i for i in inp.ids if i in still])

    return running_workflows


async def _take(registry: WorkflowHandle[object, object], take: Take) -> Taken:
    taken: Taken = await registry.execute_update(TAKE_UPDATE, take, result_type=Taken)
    return taken


async def test_a_key_has_one_holder_and_passes_on_only_when_its_holder_has_ended(
    time_skipping: WorkflowEnvironment,
) -> None:
    env = time_skipping
    async with worker(env, [ClaimRegistry], [_running(set(), [])]):
        registry = await env.client.start_workflow(
            ClaimRegistry.run, RegistryState(), id=f"claims-{uuid.uuid4()}", task_queue=QUEUE
        )
        assert await _take(registry, Take("name:payments-prod", "req-a")) == Taken(True, "req-a")
        assert await _take(registry, Take("name:payments-prod", "req-a")) == Taken(True, "req-a")
        # Another request is refused, told who holds it...
        assert await _take(registry, Take("name:payments-prod", "req-b")) == Taken(False, "req-a")
        # ...and may evict only the holder it saw end (a compare and swap).
        stale = Take("name:payments-prod", "req-b", evict="req-z")
        assert await _take(registry, stale) == Taken(False, "req-a")
        evict = Take("name:payments-prod", "req-b", evict="req-a")
        assert await _take(registry, evict) == Taken(True, "req-b")
        # Only the holder releases.
        released = await registry.execute_update(
            RELEASE_UPDATE, Release("name:payments-prod", "req-a"), result_type=bool
        )
        assert released is False
        released = await registry.execute_update(
            RELEASE_UPDATE, Release("name:payments-prod", "req-b"), result_type=bool
        )
        assert released is True
        assert await registry.query(HELD_QUERY) == {}
        await registry.terminate("the specification is over")


async def test_the_half_hourly_sweep_drops_the_keys_of_holders_that_no_longer_run(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, asked = time_skipping, []
    async with worker(env, [ClaimRegistry], [_running({"req-live"}, asked)]):
        registry = await env.client.start_workflow(
            ClaimRegistry.run, RegistryState(), id=f"claims-{uuid.uuid4()}", task_queue=QUEUE
        )
        await _take(registry, Take("email:a@example.com", "req-live"))
        await _take(registry, Take("email:b@example.com", "req-gone"))  # terminated by hand
        await env.sleep(timedelta(minutes=29))
        assert asked == []  # not before its time
        await env.sleep(timedelta(minutes=2))
        held = await eventually_async(  # the sweep's activity may still be answering
            lambda: registry.query(HELD_QUERY),
            lambda held: len(held) == 1,
            "the terminated request's claim swept",
            within=30,
            interval=0.02,
        )
        assert asked == [["req-gone", "req-live"]]
        assert held == {"email:a@example.com": "req-live"}
        await registry.terminate("the specification is over")
