"""A baseline rollout, as a specification: the fleet cut into waves (a canary, then growing),
one StackSet operation per wave; an account brought up meanwhile gets none."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from common import rollouts as contract
from common.drift import DriftTargets, DriftTargetsInput
from common.landing_zone import StackSetBaseline
from common.rollouts import (
    InstanceSurvey,
    Operation,
    OuTarget,
    RolloutInput,
    RolloutState,
    RolloutStatus,
    RunOperationInput,
    WaveShape,
    WaveSurveyInput,
)
from tests.waiting import eventually_async
from tests.workflows.harness import QUEUE, worker
from workflows.rollout import BaselineRollout

BASELINE = StackSetBaseline(stack_set_name="vend-rollout-probe", regions=["us-east-1"])
FLEET = [f"70000000000{i}" for i in range(7)]


class StackSet:
    """The fake AWS side of a rollout: the fleet's instances, the operations asked for, the
    accounts a vend brought up meanwhile, and the ones an operation fails."""

    def __init__(self) -> None:
        self.operations: list[list[str]] = []
        self.brought_up: set[str] = set()
        self.failing: set[str] = set()
        # Accounts a vend brings up while the first operation runs: the look at a later wave
        # happens after that, whatever the test's own pace.
        self.brought_up_during_canary: set[str] = set()
        # The rollout looks at the next wave while this one's operation runs; an operation here
        # ends only once that look has been answered, as AWS's minutes-long ones would.
        self.looked = asyncio.Event()
        self.waves = 3

    def activities(self) -> list[object]:
        @activity.defn(name="survey_rollout")
        async def survey_rollout(inp: RolloutInput) -> InstanceSurvey:
            return InstanceSurvey(
                template_changes=False,
                regions=BASELINE.regions,
                accounts={a: "Experiments/Rollout" for a in FLEET},
                ou_ids={"Experiments/Rollout": "ou-rollout"},
            )

        @activity.defn(name="drift_targets")
        async def drift_targets(inp: DriftTargetsInput) -> DriftTargets:
            return DriftTargets()

        @activity.defn(name="current_accounts")
        async def current_accounts(inp: WaveSurveyInput) -> list[str]:
            self.looked.set()
            return sorted(self.brought_up & set(inp.accounts))

        @activity.defn(name="run_stack_set_operation")
        async def run_stack_set_operation(inp: RunOperationInput) -> Operation:
            op = inp.operation
            self.operations.append(list(op.accounts))
            if len(self.operations) == 1:
                self.brought_up |= self.brought_up_during_canary
            if len(self.operations) < self.waves:
                await self.looked.wait()
                self.looked.clear()
            failed = sorted(self.failing & set(op.accounts))
            self.failing -= set(failed)  # an operator fixed it before resuming
            return op.model_copy(
                update={
                    "status": "FAILED" if failed else "SUCCEEDED",
                    "failed_accounts": failed,
                    "reason": "Account should have the execution role" if failed else None,
                }
            )

        return [survey_rollout, drift_targets, current_accounts, run_stack_set_operation]


def _input(**kw: object) -> RolloutInput:
    return RolloutInput.model_validate(
        {
            "rollout_id": str(uuid.uuid4()),
            "requested_by": "carol",
            "reason": "a parameter for the fleet",
            "baseline": BASELINE,
            "parameters": {"AuditAccountId": "222222222222"},
            "organizational_units": [OuTarget(path="Experiments/Rollout", approvals_required=0)],
            "waves": WaveShape(canary_accounts=1, growth=2),
            **kw,
        }
    )


async def test_waves_grow_from_a_canary_and_an_account_brought_up_meanwhile_is_skipped(
    time_skipping: WorkflowEnvironment,
) -> None:
    """A vend updates an account of the third wave while the canary's operation runs (in the
    fake, not from the test after the plan is answered: by then, on a loaded machine, the
    rollout may already have looked at the third wave)."""
    env, aws = time_skipping, StackSet()
    aws.brought_up_during_canary = {FLEET[3]}
    inp = _input()
    async with worker(env, [BaselineRollout], aws.activities()):
        handle = await env.client.start_workflow(
            BaselineRollout.run, inp, id=contract.ID_PREFIX + inp.rollout_id, task_queue=QUEUE
        )
        plan: RolloutState = await handle.execute_update(contract.PLANNED, result_type=RolloutState)
        assert [len(w.accounts) for w in plan.waves] == [1, 2, 4]
        assert plan.status == RolloutStatus.running and plan.accounts_total == 7
        assert plan.waves[2].accounts[0] == FLEET[3]
        final: RolloutState = await handle.result()
    assert final.status == RolloutStatus.completed
    assert aws.operations == [w.accounts for w in plan.waves[:2]] + [plan.waves[2].accounts[1:]]
    assert (final.accounts_done, final.accounts_skipped, final.accounts_failed) == (6, 1, [])


async def test_a_resumed_rollout_tolerates_anew_and_does_not_halt_after_every_later_wave(
    time_skipping: WorkflowEnvironment,
) -> None:
    """The canary fails (tolerance 0): the rollout halts. The operator fixes the account and
    resumes: the failure is accepted, and the later waves, which fail nothing, run to the end."""
    env, aws = time_skipping, StackSet()
    aws.failing = {FLEET[0]}
    inp = _input(max_failed_accounts=0)
    async with worker(env, [BaselineRollout], aws.activities()):
        handle = await env.client.start_workflow(
            BaselineRollout.run, inp, id=contract.ID_PREFIX + inp.rollout_id, task_queue=QUEUE
        )
        plan: RolloutState = await handle.execute_update(contract.PLANNED, result_type=RolloutState)
        assert plan.waves[0].accounts == [FLEET[0]]
        halted = await _until(handle, RolloutStatus.halted)
        assert halted.accounts_failed == [FLEET[0]] and len(aws.operations) == 1
        await handle.execute_update(contract.RESUME, "carol", result_type=RolloutState)
        final = await _until(handle, RolloutStatus.completed, RolloutStatus.halted)
    assert final.status == RolloutStatus.completed, final.events[-3:]
    assert len(aws.operations) == 3
    assert (final.accounts_done, final.accounts_failed) == (6, [FLEET[0]])


async def _until(handle: Any, *statuses: RolloutStatus) -> RolloutState:
    """The rollout's state once it is in one of ``statuses`` (polled: it changes by itself)."""
    state: RolloutState = await eventually_async(
        lambda: handle.query(contract.GET_STATE, result_type=RolloutState),
        lambda state: state.status in statuses,
        f"the rollout {' or '.join(s.value for s in statuses)}",
        within=30,
        interval=0.05,
    )
    return state
