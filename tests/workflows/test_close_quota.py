"""The close quota's queue, as a specification: AWS closes at most a quota of accounts in a
rolling 30 days; past it, closures wait in line, are told their place and when the window frees
one, and go when it does. Thirty days pass here in a second, skipped, not shortened."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from tests.workflows.harness import QUEUE, worker
from tests.workflows.listeners import SignalListener, heard
from workflows.close_quota import CloseOutcome, CloseQuotaQueue, CloseQuotaState, CloseTurn

LIMIT = 2


async def test_past_the_quota_closures_wait_their_turn_until_the_window_frees_a_place(
    time_skipping: WorkflowEnvironment,
) -> None:
    env, run = time_skipping, uuid.uuid4().hex[:8]
    async with worker(env, [CloseQuotaQueue, SignalListener], []):
        queue = await env.client.start_workflow(
            CloseQuotaQueue.run, CloseQuotaState(), id=f"close-quota-{run}", task_queue=QUEUE
        )
        askers = [
            await env.client.start_workflow(
                SignalListener.run, id=f"closer-{run}-{i}", task_queue=QUEUE
            )
            for i in range(3)
        ]
        for i, asker in enumerate(askers):
            await queue.signal(
                CloseQuotaQueue.ask,
                CloseTurn(request_id=f"r{i}", workflow_id=asker.id, limit=LIMIT),
            )
        assert [n["kind"] for n in await heard(askers[0], 1)] == ["granted"]
        second = (await heard(askers[1], 1))[0]
        assert second["kind"] == "queued" and second["position"] == 2
        assert (await heard(askers[2], 1))[0]["position"] == 3

        # The head closes; the next is granted; it closes too: the quota is used up.
        await queue.signal(CloseQuotaQueue.done, CloseOutcome(request_id="r0", outcome="closed"))
        assert (await heard(askers[1], 2))[-1]["kind"] == "granted"
        await queue.signal(CloseQuotaQueue.done, CloseOutcome(request_id="r1", outcome="closed"))
        state: CloseQuotaState = await queue.query(CloseQuotaQueue.get_state)
        first_closure = min(state.closures)
        told = (await heard(askers[2], 2))[-1]
        assert told["kind"] == "queued" and told["position"] == 1
        assert datetime.fromisoformat(told["next_free_at"]) == first_closure + timedelta(days=30)
        assert state.granted is None  # nobody closes while the window is full

        await env.sleep(timedelta(days=30, minutes=1))  # skipped, not waited
        granted = (await heard(askers[2], 3))[-1]
        assert granted["kind"] == "granted"
        assert datetime.fromisoformat(granted["at"]) >= first_closure + timedelta(days=30)
        for asker in askers:
            await asker.signal(SignalListener.stop)
        await queue.terminate("the specification is over")


async def test_a_refusal_by_aws_keeps_the_heads_place_and_asks_again_later(
    time_skipping: WorkflowEnvironment,
) -> None:
    """Closures made outside the engine count too: AWS may refuse although the queue had room.
    The head is not dropped; it is granted again after ``refused_retry_seconds``."""
    env, run = time_skipping, uuid.uuid4().hex[:8]
    async with worker(env, [CloseQuotaQueue, SignalListener], []):
        queue = await env.client.start_workflow(
            CloseQuotaQueue.run, CloseQuotaState(), id=f"close-quota-{run}", task_queue=QUEUE
        )
        asker = await env.client.start_workflow(
            SignalListener.run, id=f"closer-{run}", task_queue=QUEUE
        )
        turn = CloseTurn(request_id="r0", workflow_id=asker.id, limit=LIMIT)
        await queue.signal(CloseQuotaQueue.ask, turn)
        assert (await heard(asker, 1))[0]["kind"] == "granted"
        await queue.signal(CloseQuotaQueue.done, CloseOutcome(request_id="r0", outcome="refused"))
        state: CloseQuotaState = await queue.query(CloseQuotaQueue.get_state)
        assert [t.request_id for t in state.queue] == ["r0"] and state.granted is None
        await env.sleep(timedelta(seconds=state.refused_retry_seconds + 60))
        again = await heard(asker, 2)
        assert [n["kind"] for n in again][-1] == "granted"
        await asker.signal(SignalListener.stop)
        await queue.terminate("the specification is over")
