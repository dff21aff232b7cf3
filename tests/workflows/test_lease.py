"""Leases and their pool, as specifications: fake activities on the time-skipping server, so a
lease's days pass in a second, skipped, not shortened.

What is specified: the lease's timers (duration thresholds, the 24-hour warning, the end) and
what an extension or an unfreeze does to them; approval; the pool's keeper (vends to keep
``min_available``, hands out least recently used first, cleans after each lease, quarantines
what the inventory finds left, an operator's retry and retirement)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.identity_center import AccessInput
from activities.notifications import Delivered, Notification
from activities.setting_result import SettingResult
from common import leases as contract
from common.lease_policy import LeaseTemplate, PoolSpec, Threshold, ThresholdAction
from common.leases import (
    Approval,
    CleaningResult,
    CleaningRun,
    Ending,
    Extension,
    LeaseBudget,
    LeaseGrant,
    LeaseInput,
    LeaseState,
    LeaseStatus,
    OperatorAction,
    PoolAccount,
    PoolAccountState,
    PoolConfig,
    PoolState,
    PoolVend,
    Unfreeze,
    VendOutcome,
)
from common.models import Principal, Role
from tests.waiting import eventually_async
from tests.workflows.harness import QUEUE, worker
from workflows.lease import SandboxLease
from workflows.lease_pool import LeasePool

DAY = timedelta(days=1)


@dataclass
class LeaseFakes:
    """The activities a lease and its pool call, recording what they were asked."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    left_behind: list[list[str]] = field(default_factory=list)  # per cleaning, in turn
    vended: int = 0
    refuse_once: set[str] = field(default_factory=set)  # activities AWS refuses, first call

    def named(self, name: str) -> list[Any]:
        return [arg for called, arg in self.calls if called == name]

    def activities(self) -> list[Callable[..., Any]]:
        def vend(inp: PoolVend) -> VendOutcome:
            self.vended += 1
            return VendOutcome(account_id=f"{100000000000 + self.vended}")

        def clean(run: CleaningRun) -> CleaningResult:
            left = self.left_behind.pop(0) if self.left_behind else []
            return CleaningResult(regions=run.regions, passes=3 if left else 1, left_behind=left)

        done = SettingResult(detail="done", attempt=1)
        return [
            _typed("tag_lease_account", LeaseGrant, self, lambda _: "tagged"),
            _typed("untag_lease_account", str, self, lambda _: "untagged"),
            _typed("create_lease_budget", LeaseBudget, self, lambda _: "budget"),
            _typed("delete_lease_budget", LeaseBudget, self, lambda _: "deleted"),
            _typed("assign_access", AccessInput, self, lambda _: done),
            _typed("remove_access", AccessInput, self, lambda _: done),
            _typed("freeze_account", str, self, lambda _: "frozen"),
            _typed("unfreeze_account", str, self, lambda _: "unfrozen"),
            _typed("notify", Notification, self, lambda _: Delivered(delivered=True, detail="")),
            _typed("vend_pool_account", PoolVend, self, vend),
            _typed("clean_account", CleaningRun, self, clean),
        ]


def _typed(name: str, kind: type, fakes: LeaseFakes, answer: Callable[[Any], Any]) -> Any:
    """A fake activity with a typed parameter (the converter needs it to decode the input)."""

    async def fake(arg: Any) -> Any:
        fakes.calls.append((name, arg))
        if name in fakes.refuse_once:
            fakes.refuse_once.discard(name)
            raise ApplicationError(
                "AccessDeniedException: not allowed", type="AccessDenied", non_retryable=True
            )
        return answer(arg)

    fake.__annotations__ = {"arg": kind, "return": Any}
    return activity.defn(name=name)(fake)


SPEC = PoolSpec(
    organizational_unit="Sandbox",
    min_available=1,
    max_accounts=4,
    name_prefix="pool",
    regions=["us-east-1", "eu-west-1"],
    owner_email="cloudops@example.com",
    billing_customer_id="cust-001",
)


def template(**overrides: Any) -> LeaseTemplate:
    values: dict[str, Any] = {
        "name": "sandbox-week",
        "organizational_unit": "Sandbox",
        "max_duration": timedelta(days=14),
        "default_duration": timedelta(days=4),
        "max_budget_usd": 200,
        "default_budget_usd": 50,
        "thresholds": [
            Threshold(duration_percent=50, action=ThresholdAction.notify),
            Threshold(duration_percent=75, action=ThresholdAction.freeze),
        ],
        "permission_sets": ["SandboxAdministrator"],
    }
    return LeaseTemplate(**(values | overrides))


ALICE = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])


@dataclass
class World:
    env: WorkflowEnvironment
    fakes: LeaseFakes
    pool: WorkflowHandle[Any, Any]
    run: str

    async def lease(self, tmpl: LeaseTemplate | None = None) -> WorkflowHandle[Any, Any]:
        tmpl = tmpl or template()
        lease_id = str(uuid.uuid4())
        inp = LeaseInput(
            lease_id=lease_id,
            template=tmpl,
            pool=self.pool.id,
            holder=ALICE,
            holder_email=ALICE.email,
            justification="a spec",
            duration_seconds=tmpl.duration().total_seconds(),
            budget_usd=tmpl.budget(),
            created_at=datetime.now(UTC),
        )
        return await self.env.client.start_workflow(
            SandboxLease.run, inp, id=contract.lease_workflow_id(lease_id), task_queue=QUEUE
        )

    async def pool_state(self) -> PoolState:
        state: PoolState = await self.pool.query(contract.GET_STATE, result_type=PoolState)
        return state


async def lease_state(handle: WorkflowHandle[Any, Any]) -> LeaseState:
    state: LeaseState = await handle.query(contract.GET_STATE, result_type=LeaseState)
    return state


async def with_world(
    env: WorkflowEnvironment,
    body: Callable[[World], Awaitable[None]],
    accounts: int = 1,
    fakes: LeaseFakes | None = None,
) -> LeaseFakes:
    fakes = fakes or LeaseFakes()
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    seeded = {
        f"20000000000{i}": PoolAccount(
            account_id=f"20000000000{i}",
            state=PoolAccountState.available,
            since=now,
            last_returned_at=now - timedelta(hours=10 - i),  # the first is least recently used
        )
        for i in range(accounts)
    }
    state = PoolState(
        config=PoolConfig(spec=SPEC, email_template="aws+{name}@example.com"), accounts=seeded
    )
    async with worker(env, [SandboxLease, LeasePool], fakes.activities()):
        pool = await env.client.start_workflow(
            LeasePool.run, state, id=f"{contract.POOL_PREFIX}{run}", task_queue=QUEUE
        )
        await body(World(env, fakes, pool, run))
        await pool.terminate("the specification is over")
    return fakes


async def test_a_lease_reaches_its_thresholds_freezes_and_ends_on_time(
    time_skipping: WorkflowEnvironment,
) -> None:
    async def body(world: World) -> None:
        lease = await world.lease()
        active = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        assert active.account_id == "200000000000"  # the least recently used
        assert active.ends_at - active.granted_at == timedelta(days=4)
        assert [a.access.users for a in world.fakes.named("assign_access")] == [["alice"]]

        await world.env.sleep(2 * DAY + timedelta(minutes=1))  # half-way: notified
        halfway = await eventually_async(
            lambda: lease_state(lease),
            lambda s: "duration 50%" in s.thresholds_reached,
            "the state the specification waits for",
        )
        assert halfway.status == LeaseStatus.active
        assert world.fakes.named("freeze_account") == []

        await world.env.sleep(DAY)  # three quarters: frozen
        frozen = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.frozen,
            "the state the specification waits for",
        )
        assert world.fakes.named("freeze_account") == [frozen.account_id]
        events = [n.event for n in world.fakes.named("notify")]
        assert events[:3] == ["granted", "threshold", "threshold"] and "frozen" in events

        # An operator lifts it with more budget and a later end; the new end is kept to.
        assert frozen.ends_at is not None and frozen.granted_at is not None
        later = frozen.ends_at + DAY
        answer = await lease.execute_update(
            contract.UNFREEZE,
            Unfreeze(by="carol", ends_at=later, budget_usd=120),
            result_type=LeaseState,
        )
        assert answer.ends_at == later and answer.budget_usd == 120
        await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        budgets = world.fakes.named("create_lease_budget")
        assert [b.amount_usd for b in budgets] == [50, 120]
        assert world.fakes.named("unfreeze_account") == [frozen.account_id]

        await world.env.sleep(2 * DAY)
        ended = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.ended,
            "the state the specification waits for",
        )
        assert ended.ended_at is not None and ended.ended_at >= later
        assert "ending_soon" in ended.thresholds_reached
        assert len(world.fakes.named("remove_access")) == 1
        assert [b.name for b in world.fakes.named("delete_lease_budget")] == [
            f"vend-lease-{ended.lease_id}"
        ]
        # Back in the pool, cleaned, and available again.
        back = await eventually_async(
            world.pool_state,
            lambda s: (
                s.accounts["200000000000"].state == PoolAccountState.available
                and s.accounts["200000000000"].cleanings == 1
            ),
            "the state the specification waits for",
        )
        assert back.accounts["200000000000"].lease_id is None

    await with_world(time_skipping, body)


async def test_an_extension_stays_within_the_template_and_moves_the_end(
    time_skipping: WorkflowEnvironment,
) -> None:
    async def body(world: World) -> None:
        lease = await world.lease(template(thresholds=[]))
        active = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        assert active.granted_at is not None and active.ends_at is not None
        too_far = active.granted_at + timedelta(days=15)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await lease.execute_update(
                contract.EXTEND, Extension(by="alice", ends_at=too_far), result_type=LeaseState
            )
        assert "at the latest" in str(refused.value.cause)
        new_end = active.ends_at + 3 * DAY
        await lease.execute_update(
            contract.EXTEND, Extension(by="alice", ends_at=new_end), result_type=LeaseState
        )
        await world.env.sleep(5 * DAY)  # past the old end: still active
        assert (await lease_state(lease)).status == LeaseStatus.active
        await world.env.sleep(2 * DAY + timedelta(minutes=1))
        ended = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.ended,
            "the state the specification waits for",
        )
        assert ended.ended_at is not None and ended.ended_at >= new_end

    await with_world(time_skipping, body)


async def test_a_lease_that_needs_approval_waits_and_its_holder_cannot_approve_it(
    time_skipping: WorkflowEnvironment,
) -> None:
    async def body(world: World) -> None:
        needs_one = template(approvals_required=1)
        lease = await world.lease(needs_one)
        await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.pending_approval,
            "the state the specification waits for",
        )
        with pytest.raises(WorkflowUpdateFailedError):
            await lease.execute_update(
                contract.APPROVE, Approval(by="alice"), result_type=LeaseState
            )
        await lease.execute_update(contract.APPROVE, Approval(by="bob"), result_type=LeaseState)
        await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )

        unattended = await world.lease(needs_one)
        await world.env.sleep(timedelta(days=7, minutes=1))
        expired = await eventually_async(
            lambda: lease_state(unattended),
            lambda s: s.status == LeaseStatus.expired,
            "the state the specification waits for",
        )
        assert expired.account_id is None  # never took an account from the pool

    await with_world(time_skipping, body)


async def test_the_keeper_vends_to_min_available_and_hands_out_least_recently_used_first(
    time_skipping: WorkflowEnvironment,
) -> None:
    async def body(world: World) -> None:
        # Two seeded, min_available 1: nothing to vend until a lease takes one.
        first = await world.lease(template(thresholds=[]))
        got = await eventually_async(
            lambda: lease_state(first),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        assert got.account_id == "200000000000"
        second = await world.lease(template(thresholds=[]))
        other = await eventually_async(
            lambda: lease_state(second),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        assert other.account_id == "200000000001"
        # None left: the keeper vends one (an ordinary request, named from the pool's prefix).
        state = await eventually_async(
            world.pool_state,
            lambda s: len(s.accounts) == 3,
            "the state the specification waits for",
        )
        assert [v.account_name for v in world.fakes.named("vend_pool_account")] == ["pool-1"]
        assert state.accounts["100000000001"].state == PoolAccountState.available

        await first.execute_update(contract.END, Ending(by="alice"), result_type=LeaseState)
        await eventually_async(
            world.pool_state,
            lambda s: s.accounts["200000000000"].state == PoolAccountState.available,
            "the state the specification waits for",
        )
        # The account just cleaned was used last: the vended one goes out first.
        third = await world.lease(template(thresholds=[]))
        got = await eventually_async(
            lambda: lease_state(third),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        assert got.account_id == "100000000001"

    await with_world(time_skipping, body, accounts=2)


async def test_what_cleaning_leaves_quarantines_the_account_until_an_operator_retries(
    time_skipping: WorkflowEnvironment,
) -> None:
    fakes = LeaseFakes(left_behind=[["eu-west-1 EC2Instance i-1"]])

    async def body(world: World) -> None:
        lease = await world.lease(template(thresholds=[]))
        active = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        await lease.execute_update(contract.END, Ending(by="alice"), result_type=LeaseState)
        account = active.account_id
        assert account is not None
        held = await eventually_async(
            world.pool_state,
            lambda s: s.accounts[account].state == PoolAccountState.quarantined,
            "the state the specification waits for",
        )
        assert held.accounts[account].left_behind == ["eu-west-1 EC2Instance i-1"]
        assert world.fakes.named("unfreeze_account") == []  # stays as it was until clean
        action = OperatorAction(account_id=account, by="carol", reason="fixed")
        with pytest.raises(WorkflowUpdateFailedError):
            await world.pool.execute_update(
                contract.RETIRE,
                OperatorAction(account_id="999999999999", by="carol"),
                result_type=PoolAccount,
            )
        await world.pool.execute_update(contract.RETRY_CLEANING, action, result_type=PoolAccount)
        clean = await eventually_async(
            world.pool_state,
            lambda s: s.accounts[account].state == PoolAccountState.available,
            "the state the specification waits for",
        )
        assert clean.accounts[account].cleanings == 2
        retired = await world.pool.execute_update(contract.RETIRE, action, result_type=PoolAccount)
        assert retired.state == PoolAccountState.retired

    await with_world(time_skipping, body, fakes=fakes)


async def test_a_step_aws_refuses_parks_the_lease_until_an_operator_retries(
    time_skipping: WorkflowEnvironment,
) -> None:
    fakes = LeaseFakes(refuse_once={"assign_access"})

    async def body(world: World) -> None:
        lease = await world.lease(template(thresholds=[]))
        parked = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.problem is not None,
            "the state the specification waits for",
        )
        assert parked.status == LeaseStatus.granting
        assert parked.problem is not None and "AccessDenied" in parked.problem

        async def notified() -> list[str]:
            return [n.event for n in world.fakes.named("notify")]

        await eventually_async(
            notified,
            lambda events: "waiting_for_operator" in events,
            "the state the specification waits for",
        )
        await lease.execute_update(contract.RETRY, Ending(by="carol"), result_type=LeaseState)
        active = await eventually_async(
            lambda: lease_state(lease),
            lambda s: s.status == LeaseStatus.active,
            "the state the specification waits for",
        )
        assert active.problem is None
        assert len(world.fakes.named("assign_access")) == 2
        with pytest.raises(WorkflowUpdateFailedError):  # nothing waits for an operator now
            await lease.execute_update(contract.RETRY, Ending(by="carol"), result_type=LeaseState)

    await with_world(time_skipping, body, fakes=fakes)
