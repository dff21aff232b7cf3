"""ClaimRegistry: who holds which account name, email or adopted account, one shard of them.

Before the registry every request started two child workflows whose ids were its claims
(Temporal lets one running workflow hold an id): atomic, but each a workflow execution of its
own, created, cancelled and closed on the server, about a fifth of a request's cost in
``bench/overhead``. Here a claim is one entry in a shard's state, taken by an update:

- **linearizable**: ``take`` checks and takes without awaiting anything in between, and a
  workflow applies its updates one at a time, in the order the server accepted them; updates
  arriving together share one workflow task;
- **no claim outlives its request for long**: a holder that has ended loses the key to the next
  request that asks for it (the asker checked that it has ended: ``Take.evict``, a compare and
  swap, so a holder that is still running is never evicted), and a sweep every half hour (or
  on the ``sweep`` signal) drops the keys of every holder that no longer runs;
- **continue-as-new** carries the held keys when the server suggests it.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from activities.temporal_checks import TemporalChecks, WorkflowIds
    from common.claims import (
        HELD_QUERY,
        RELEASE_UPDATE,
        SWEEP_SIGNAL,
        TAKE_UPDATE,
        RegistryState,
        Release,
        Take,
        Taken,
    )

SWEEP_EVERY = timedelta(minutes=30)
HISTORY_LIMIT = 10_000  # events: continue-as-new well before the server's own suggestion


@workflow.defn(versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class ClaimRegistry:
    @workflow.init
    def __init__(self, state: RegistryState) -> None:
        self._held = dict(state.held)
        self._sweep_now = False

    @workflow.run
    async def run(self, state: RegistryState) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._sweep_now or self._history_long(), timeout=SWEEP_EVERY
                )
            if self._held and (self._sweep_now or not self._history_long()):
                await self._sweep()
            self._sweep_now = False
            if self._history_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(RegistryState(held=self._held))

    def _history_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > (
            HISTORY_LIMIT
        )

    async def _sweep(self) -> None:
        """Drop the keys of holders that no longer run (a request terminated by hand never says
        goodbye). The keys taken while the sweep looked are not touched: their holder was asked
        about before they were taken."""
        holders = sorted(set(self._held.values()))
        running = await workflow.execute_activity_method(
            TemporalChecks.running_workflows,
            WorkflowIds(ids=holders),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
        )
        ended = set(holders) - set(running.ids)
        for key, holder in list(self._held.items()):
            if holder in ended:
                del self._held[key]

    @workflow.update(name=TAKE_UPDATE)
    async def take(self, inp: Take) -> Taken:
        # From here to the return nothing awaits: check and take are one step.
        holder = self._held.get(inp.key)
        if holder is not None and holder not in (inp.holder, inp.evict):
            return Taken(granted=False, holder=holder)
        self._held[inp.key] = inp.holder
        return Taken(granted=True, holder=inp.holder)

    @workflow.update(name=RELEASE_UPDATE)
    async def release(self, inp: Release) -> bool:
        if self._held.get(inp.key) != inp.holder:
            return False
        del self._held[inp.key]
        return True

    @workflow.signal(name=SWEEP_SIGNAL)
    def sweep(self) -> None:
        self._sweep_now = True

    @workflow.query(name=HELD_QUERY)
    def held(self) -> dict[str, str]:
        return self._held
