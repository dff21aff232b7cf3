"""``/v1/rollouts``: carry a baseline StackSet change to the accounts already vended.

A rollout is a workflow (``rollout-<id>``, see ``workflows/rollout.py``). The POST answers with
its plan (accounts, waves, the StackSet operations, an ETA) before anything runs; approval is
the strictest touched OU's quorum. Operators and admins make, pause, resume and cancel them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import Approver, ClientDep, LandingZoneDep, Operator, SettingsDep, Staff
from api.openapi import problems
from api.schemas import RolloutBody, RolloutPage, RolloutView
from api.services import rollouts as service
from api.temporal_calls import rpc_timeout
from common import rollouts as contract

router = APIRouter(
    prefix="/v1/rollouts",
    tags=["rollouts"],
    responses=problems(400, 401, 403, 413, 422, 429, 503),
)


@router.post(
    "", response_model=RolloutView, status_code=status.HTTP_201_CREATED, responses=problems(422)
)
async def create_rollout(
    body: RolloutBody, user: Operator, client: ClientDep, lz: LandingZoneDep, settings: SettingsDep
) -> RolloutView:
    """Plan a rollout; it runs once approved (at once when no touched OU asks for approval)."""
    inp = service.rollout_input(body, lz, settings, user.sub)
    return await service.start_rollout(client, settings, inp)


@router.get("", response_model=RolloutPage)
async def list_rollouts(
    user: Staff,
    client: ClientDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RolloutPage:
    """The newest rollouts first (visibility; eventually consistent)."""
    found = client.list_workflows(
        f"WorkflowType = '{contract.WORKFLOW}'", limit=limit, rpc_timeout=rpc_timeout(settings)
    )
    return RolloutPage(items=[await service.summary(wf) async for wf in found])


@router.get("/{rollout_id}", response_model=RolloutView, responses=problems(404))
async def get_rollout(
    rollout_id: str, user: Staff, client: ClientDep, settings: SettingsDep
) -> RolloutView:
    """Progress: waves, operations, accounts done / failed / left, ETA."""
    return await service.read_rollout(client, settings, rollout_id)


@router.post("/{rollout_id}/approve", response_model=RolloutView, responses=problems(404, 409))
async def approve_rollout(
    rollout_id: str, user: Approver, client: ClientDep, settings: SettingsDep
) -> RolloutView:
    return await service.decide(client, settings, rollout_id, contract.APPROVE, user.sub)


@router.post("/{rollout_id}/pause", response_model=RolloutView, responses=problems(404, 409))
async def pause_rollout(
    rollout_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> RolloutView:
    """Stops before the next wave; the running operation ends as AWS runs it."""
    return await service.decide(client, settings, rollout_id, contract.PAUSE, user.sub)


@router.post("/{rollout_id}/resume", response_model=RolloutView, responses=problems(404, 409))
async def resume_rollout(
    rollout_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> RolloutView:
    return await service.decide(client, settings, rollout_id, contract.RESUME, user.sub)


@router.post("/{rollout_id}/cancel", response_model=RolloutView, responses=problems(404, 409))
async def cancel_rollout(
    rollout_id: str, user: Operator, client: ClientDep, settings: SettingsDep
) -> RolloutView:
    """No further wave starts; what ran stays (each wave is a complete StackSet update)."""
    return await service.decide(client, settings, rollout_id, contract.CANCEL, user.sub)
