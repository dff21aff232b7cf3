"""When the last check of every account looked at an account it did not report to.

A check of every account tells an account's workflow only what changed (at 10,000 accounts the
reports were the check's whole cost); the others were checked all the same, at the check's time.
An account's view takes that time from the last completed check of every account, unless the
check could not look at it (``unchecked``) or it was managed only after the check listed the
accounts. Read once per ``TTL_SECONDS`` per API process: every account view shares it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client
from temporalio.service import RPCError

from api.temporal_calls import rpc_timeout
from common import drift
from common.drift import DriftCheckResult
from common.models import AccountStatus, ManagedAccount
from common.settings import Settings

TTL_SECONDS = 10.0


@dataclass(frozen=True)
class FleetCheck:
    checked_at: datetime
    listed_at: datetime
    unchecked: frozenset[str]

    def checked(self, account: ManagedAccount) -> datetime | None:
        """This check's time for the account, if the check looked at it."""
        if account.status != AccountStatus.active or account.account_id in self.unchecked:
            return None
        if account.managed_since is None or account.managed_since > self.listed_at:
            return None
        return self.checked_at


_cache: dict[int, tuple[float, FleetCheck | None]] = {}


async def last_fleet_check(client: Client, settings: Settings) -> FleetCheck | None:
    now = time.monotonic()
    found = _cache.get(id(client))
    if found is not None and now - found[0] < TTL_SECONDS:
        return found[1]
    try:
        check = await _read(client, settings)
    except RPCError:
        return found[1] if found else None  # an account's view never fails for want of it
    _cache[id(client)] = (now, check)
    return check


async def _read(client: Client, settings: Settings) -> FleetCheck | None:
    workflow_id = drift.ID_PREFIX + drift.EVERY_ACCOUNT
    query = f"WorkflowId = '{workflow_id}' AND ExecutionStatus = 'Completed'"
    timeout = rpc_timeout(settings)
    async for run in client.list_workflows(query, limit=1, rpc_timeout=timeout):
        handle = client.get_workflow_handle(
            workflow_id, run_id=run.run_id, result_type=DriftCheckResult
        )
        result: DriftCheckResult = await handle.result(rpc_timeout=timeout)
        if result.checked_at is None or result.listed_at is None:
            return None  # a check from before these were kept
        return FleetCheck(
            checked_at=result.checked_at,
            listed_at=result.listed_at,
            unchecked=frozenset(result.unchecked),
        )
    return None


def last_checked_at(account: ManagedAccount, fleet: FleetCheck | None) -> datetime | None:
    """The later of the account's own record and the last check of every account."""
    times = [t for t in (account.last_checked_at, fleet.checked(account) if fleet else None) if t]
    return max(times) if times else None
