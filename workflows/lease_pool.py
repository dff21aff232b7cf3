"""LeasePool: the keeper of one OU's pool of sandbox accounts.

It holds every pool account's state (provisioning → available → leased → cleaning → available,
or quarantined, or retired) and is the only one that changes it, so two leases can never get
one account: leases ask (``want``), it answers each in turn with the least recently used
available account (``assigned``), and takes them back (``returned``) to clean.

It keeps ``min_available`` accounts available (more while leases wait) by filing ordinary vend
requests, so new pool accounts get every step and check a vended account gets. Cleaning runs
here too, after every lease: the cleaner, then an inventory of its own (never the cleaner's
report), and the account is available again only when the inventory finds nothing; otherwise
it is quarantined with what was left, for an operator to retry or retire.

Long-lived: it continues as new when the server suggests it and nothing of its own is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from common import leases as contract
    from common.leases import (
        Assignment,
        CleaningResult,
        CleaningRun,
        LeaseClaim,
        OperatorAction,
        PoolAccount,
        PoolAccountState,
        PoolConfig,
        PoolState,
        PoolVend,
        Provisioning,
        Returned,
        VendOutcome,
    )
    from workflows.leasing import metrics

HISTORY_LIMIT = 20_000
FAILURE_PAUSE = timedelta(minutes=10)  # after a failed vend, before the keeper tries again
KEPT_FAILURES = 10
_REQUESTS = uuid.UUID("5b1c9e0e-8d1e-4c47-9a3f-2f6a0b7e4d21")


@workflow.defn(name=contract.POOL_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class LeasePool:
    @workflow.init
    def __init__(self, state: PoolState) -> None:
        self._s = state
        self._changed = False
        self._running: set[str] = set()  # provisioning request ids and accounts being cleaned
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._recorded: dict[str, object] | None = None
        self._paused_until = workflow.now() - timedelta(seconds=1)

    @workflow.run
    async def run(self, state: PoolState) -> None:
        # Nothing runs across a continue-as-new (it waits for its own work to end first); the
        # vends in ``provisioning`` are found again by their request ids.
        while self._running or not self._history_long():
            self._changed = False
            await self._hand_out()
            self._provision()
            self._clean()
            metrics.pool_accounts(self._s.config.spec.organizational_unit, self._s)
            self._record()
            wake = self._paused_until - workflow.now()
            timeout = wake if wake > timedelta(0) and self._wants_more() else None
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._changed, timeout=timeout)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s)

    def _record(self) -> None:
        """The state in the memo when it changed: the pool's page reads it while no worker
        answers a query (marked stale), as a request's does."""
        recorded = self._s.model_dump(mode="json")
        if recorded != self._recorded:
            self._recorded = recorded
            workflow.upsert_memo({contract.POOL_MEMO: recorded})

    def _history_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
        )

    # ------------------------------------------------------------------ handing out
    async def _hand_out(self) -> None:
        """First come, first served; the least recently used account first. Every answer of a
        round goes out in one workflow task (signalled together, not one after another)."""
        given: list[tuple[LeaseClaim, PoolAccount]] = []
        free = sorted(
            (a for a in self._s.accounts.values() if a.state == PoolAccountState.available),
            key=lambda a: (a.last_returned_at or a.since, a.account_id),
        )
        while self._s.waiting and free:
            claim, account = self._s.waiting.pop(0), free.pop(0)
            account.state, account.lease_id = PoolAccountState.leased, claim.lease_id
            account.since = workflow.now()
            given.append((claim, account))
        answers = await asyncio.gather(
            *(
                workflow.get_external_workflow_handle(claim.workflow_id).signal(
                    contract.ASSIGNED, Assignment(account_id=account.account_id)
                )
                for claim, account in given
            ),
            return_exceptions=True,
        )
        for (_, account), answer in zip(given, answers, strict=True):
            if isinstance(answer, BaseException):  # the lease is gone (terminated by hand)
                account.state, account.lease_id = PoolAccountState.available, None
                self._changed = True

    # ------------------------------------------------------------------ keeping it full
    def _wanted(self) -> int:
        s = self._s
        want = s.config.spec.min_available + len(s.waiting)
        # An account being cleaned is ready soon: counting it keeps a pool whose leases come
        # and go from growing by one account per lease.
        have = (
            s.count(PoolAccountState.available)
            + s.count(PoolAccountState.cleaning)
            + len(s.provisioning)
        )
        live = sum(1 for a in s.accounts.values() if a.state != PoolAccountState.retired)
        room = s.config.spec.max_accounts - live - len(s.provisioning)
        return max(0, min(want - have, room))

    def _wants_more(self) -> bool:
        return self._wanted() > 0

    def _provision(self) -> None:
        if workflow.now() < self._paused_until:
            return
        for _ in range(self._wanted()):
            s = self._s
            s.vended += 1
            name = f"{s.config.spec.name_prefix}-{s.vended}"
            request_id = str(uuid.uuid5(_REQUESTS, f"{workflow.info().workflow_id}/{s.vended}"))
            s.provisioning.append(
                Provisioning(request_id=request_id, account_name=name, started_at=workflow.now())
            )
        for p in self._s.provisioning:
            if p.request_id not in self._running:
                self._running.add(p.request_id)
                self._tasks[p.request_id] = asyncio.create_task(self._vend(p))

    async def _vend(self, p: Provisioning) -> None:
        spec = self._s.config.spec
        outcome: VendOutcome = await workflow.execute_activity(
            "vend_pool_account",
            PoolVend(
                request_id=p.request_id,
                account_name=p.account_name,
                account_email=self._s.config.email_template.replace("{name}", p.account_name),
                organizational_unit=spec.organizational_unit,
                owner_email=spec.owner_email,
                cost_center=spec.cost_center,
                billing_customer_id=spec.billing_customer_id,
            ),
            result_type=VendOutcome,
            # A vend takes 20-60 minutes on AWS, longer when it waits for an operator.
            start_to_close_timeout=timedelta(days=7),
            heartbeat_timeout=timedelta(seconds=self._s.config.heartbeat_seconds),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
        self._s.provisioning = [x for x in self._s.provisioning if x.request_id != p.request_id]
        self._running.discard(p.request_id)
        self._tasks.pop(p.request_id, None)
        if outcome.account_id:
            self._s.accounts[outcome.account_id] = PoolAccount(
                account_id=outcome.account_id,
                state=PoolAccountState.available,
                since=workflow.now(),
            )
        else:
            self._s.failures = [*self._s.failures, f"{p.account_name}: {outcome.failure}"][
                -KEPT_FAILURES:
            ]
            self._paused_until = workflow.now() + FAILURE_PAUSE
        self._changed = True

    # ------------------------------------------------------------------ cleaning
    def _clean(self) -> None:
        for account in self._s.accounts.values():
            if account.state == PoolAccountState.cleaning and account.account_id not in (
                self._running
            ):
                self._running.add(account.account_id)
                self._tasks[account.account_id] = asyncio.create_task(self._cleaning(account))

    async def _cleaning(self, account: PoolAccount) -> None:
        account.cleanings += 1
        started = workflow.now()
        try:
            await self._clean_once(account)
        except ActivityError as err:  # its attempts ran out: an operator's matter
            account.state = PoolAccountState.quarantined
            account.reason = f"cleaning failed: {err.cause or err}"
        outcome = "clean" if account.state == PoolAccountState.available else "quarantined"
        metrics.cleaned(self._s.config.spec.organizational_unit, outcome, started)
        account.since = workflow.now()
        self._running.discard(account.account_id)
        self._tasks.pop(account.account_id, None)
        self._changed = True

    async def _clean_once(self, account: PoolAccount) -> None:
        result: CleaningResult = await workflow.execute_activity(
            "clean_account",
            CleaningRun(
                account_id=account.account_id,
                run=f"{account.account_id}-{account.cleanings}",
                regions=self._s.config.spec.regions,
            ),
            result_type=CleaningResult,
            start_to_close_timeout=timedelta(hours=6),
            heartbeat_timeout=timedelta(seconds=self._s.config.heartbeat_seconds),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=5),
        )
        if not result.left_behind and result.cleaner_failed is None:
            # A lease frozen at its end stays frozen until it is clean.
            await workflow.execute_activity(
                "unfreeze_account",
                account.account_id,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            account.state, account.left_behind, account.reason = (
                PoolAccountState.available,
                [],
                None,
            )
        else:
            account.state = PoolAccountState.quarantined
            account.left_behind = result.left_behind
            left = f"{len(result.left_behind)} resource(s) left after {result.passes} pass(es)"
            account.reason = "; ".join(x for x in (left, result.cleaner_failed) if x)

    # ------------------------------------------------------------------ messages
    @workflow.signal(name=contract.WANT)
    def want(self, claim: LeaseClaim) -> None:
        leased = {a.lease_id for a in self._s.accounts.values()}
        waiting = {c.lease_id for c in self._s.waiting}
        if claim.lease_id not in leased | waiting:  # signals arrive once; this guards by hand
            self._s.waiting.append(claim)
        self._changed = True

    @workflow.signal(name=contract.WITHDRAW)
    def withdraw(self, claim: LeaseClaim) -> None:
        self._s.waiting = [c for c in self._s.waiting if c.lease_id != claim.lease_id]
        for account in self._s.accounts.values():  # assigned as the lease gave up: take back
            if account.lease_id == claim.lease_id and account.state == PoolAccountState.leased:
                account.state, account.lease_id = PoolAccountState.cleaning, None
        self._changed = True

    @workflow.signal(name=contract.RETURNED)
    def returned(self, back: Returned) -> None:
        account = self._s.accounts.get(back.account_id)
        if account is None or account.lease_id != back.lease_id:
            return  # returned twice: the first one counted
        account.state, account.lease_id = PoolAccountState.cleaning, None
        account.last_returned_at = account.since = workflow.now()
        self._changed = True

    @workflow.signal(name=contract.CONFIGURE)
    def configure(self, config: PoolConfig) -> None:
        self._s.config = config
        self._changed = True

    @workflow.update(name=contract.RETRY_CLEANING)
    def retry_cleaning(self, action: OperatorAction) -> PoolAccount:
        account = self._s.accounts[action.account_id]
        account.state, account.since = PoolAccountState.cleaning, workflow.now()
        account.reason = f"retried by {action.by}: {action.reason}".rstrip(": ")
        self._changed = True
        return account

    @retry_cleaning.validator
    def _may_retry(self, action: OperatorAction) -> None:
        self._must_be(action, PoolAccountState.quarantined)

    @workflow.update(name=contract.RETIRE)
    def retire(self, action: OperatorAction) -> PoolAccount:
        """Out of the pool for good; closing it is a decommission request of its own."""
        account = self._s.accounts[action.account_id]
        account.state, account.since = PoolAccountState.retired, workflow.now()
        account.reason = f"retired by {action.by}: {action.reason}".rstrip(": ")
        self._changed = True
        return account

    @retire.validator
    def _may_retire(self, action: OperatorAction) -> None:
        self._must_be(action, PoolAccountState.quarantined, PoolAccountState.available)

    def _must_be(self, action: OperatorAction, *states: PoolAccountState) -> None:
        account = self._s.accounts.get(action.account_id)
        if account is None:
            raise ApplicationError(f"{action.account_id} is not in this pool", type="NotFound")
        if account.state not in states:
            raise ApplicationError(
                f"{action.account_id} is {account.state.value}, not "
                + " or ".join(s.value for s in states),
                type="Conflict",
            )

    @workflow.query(name=contract.GET_STATE)
    def get_state(self) -> PoolState:
        return self._s
