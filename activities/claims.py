"""Taking claims in the claim registry's shards (``workflows/claim_registry.py``).

A request takes its claims in a local activity, inside the workflow task that validates it, so a
claim costs the request no workflow task of its own. The shards' workflow tasks run on their own
task queue (``common.claims.claims_task_queue``) for the reason given there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypeVar, cast

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.temporal_checks import is_running
from common.claims import (
    RELEASE_UPDATE,
    TAKE_UPDATE,
    ClaimInput,
    ClaimOutcome,
    RegistryState,
    Release,
    Take,
    Taken,
    registry_id,
)

REGISTRY_WORKFLOW = "ClaimRegistry"

_T = TypeVar("_T")


@dataclass
class ClaimActivities:
    client: Client
    registry_task_queue: str

    @activity.defn(no_thread_cancel_exception=True)
    async def take_claims(self, inp: ClaimInput) -> ClaimOutcome:
        """Take every key for the calling request, then let go of ``release``. A retry after a
        lost answer finds the keys already its own and is granted them again."""
        holder = activity.info().workflow_id
        if holder is None:
            raise ApplicationError("a claim is held by a workflow", non_retryable=True)
        granted = await asyncio.gather(*(self._take(key, holder) for key in inp.take))
        refused = [key for key, ok in zip(inp.take, granted, strict=True) if not ok]
        if not refused:
            for key in inp.release:
                await self._update(RELEASE_UPDATE, key, Release(key=key, holder=holder), bool)
        return ClaimOutcome(refused=refused)

    async def _take(self, key: str, holder: str) -> bool:
        taken = await self._update(TAKE_UPDATE, key, Take(key=key, holder=holder), Taken)
        if taken.granted or await is_running(self.client, taken.holder):
            return taken.granted
        # The holder has ended (refused, finished, terminated) and nobody has swept it yet.
        evict = Take(key=key, holder=holder, evict=taken.holder)
        return (await self._update(TAKE_UPDATE, key, evict, Taken)).granted

    async def _update(self, name: str, key: str, arg: object, result: type[_T]) -> _T:
        handle = self.client.get_workflow_handle(registry_id(key))
        try:
            return cast(_T, await handle.execute_update(name, arg, result_type=result))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        # The shard's first claim ever (or its run was between continue-as-new's two halves).
        await self.client.start_workflow(
            REGISTRY_WORKFLOW,
            RegistryState(),
            id=registry_id(key),
            task_queue=self.registry_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return cast(_T, await handle.execute_update(name, arg, result_type=result))
