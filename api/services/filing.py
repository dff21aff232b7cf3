"""Filing a request: one path for every kind (vend, adopt, update, decommission, repair).

Each is checked against the caps (the requester's open requests; for a change, its account's
open changes), given its plan if it has none, and started with its validation in one call
(update-with-start): the answer is the request accepted, or its refusal as a problem. A
replayed Idempotency-Key finds the same workflow, open or closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Response
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import ClientDep, SettingsDep
from api.errors import Problem
from api.queues import queue_lengths
from api.quotas import below_account_change_cap, below_open_quota
from api.schemas import AccountRequestView
from api.services.requests import refusal, request_view
from api.temporal_calls import rpc_timeout
from common import vending_contract as contract
from common.intake import body_fingerprint
from common.models import (
    Principal,
    RequestKind,
    RequestPlan,
    RequestState,
    SubmitInput,
    VendingInput,
)
from common.request_start import start_operation
from common.settings import Settings
from common.step_plan import plan
from common.temporal_client import workflow_id


@dataclass
class Filing:
    client: Client
    settings: Settings

    async def preview(self, inp: VendingInput) -> RequestPlan:
        """What the request would do (nothing is written); the same plan is kept on it."""
        return plan(inp, await queue_lengths(self.client))

    async def file(
        self,
        inp: VendingInput,
        user: Principal,
        response: Response,
        *,
        account_id: str | None = None,
    ) -> AccountRequestView:
        """File the request: caps, plan, start; ``Location`` set to where it now lives."""
        await below_open_quota(self.client, self.settings, user)
        if account_id is not None:  # a change: its account's open changes count too
            await below_account_change_cap(self.client, self.settings, account_id)
        if inp.plan is None:
            inp.plan = await self.preview(inp)
        state = await self.submit(inp)
        response.headers["Location"] = f"/v1/account-requests/{inp.request_id}"
        return request_view(state, self.settings)

    async def submit(self, inp: VendingInput) -> RequestState:
        fingerprint = inp.body_sha256
        try:
            state: RequestState = await self.client.execute_update_with_start_workflow(
                contract.SUBMIT,
                SubmitInput(body_sha256=fingerprint),
                start_workflow_operation=start_operation(inp, self.settings),
                result_type=RequestState,
                rpc_timeout=rpc_timeout(self.settings),
            )
        except WorkflowAlreadyStartedError:
            # Only an Idempotency-Key replay of a request whose workflow has closed lands here.
            handle = self.client.get_workflow_handle(workflow_id(inp.request_id))
            state = await handle.query(contract.GET_STATE, result_type=RequestState)
            if state.kind == RequestKind.vend and body_fingerprint(state.request) != fingerprint:
                raise Problem(
                    422,
                    "Invalid request",
                    "this Idempotency-Key was already used with a different request body",
                    kind="idempotencykeyreused",
                ) from None
            if state.refusal is not None:
                raise refusal(state) from None
        return state


def get_filing(client: ClientDep, settings: SettingsDep) -> Filing:
    return Filing(client, settings)


FilingDep = Annotated[Filing, Depends(get_filing)]
