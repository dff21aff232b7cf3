"""Workload Security policy rollouts: which managed accounts a new policy concerns.

The inventory knows each account's OU, tags, connector and policy, so the survey reads the
account records' memos from visibility (one listing, no query per account) rather than ask
Workload Security about every account; the wave's activity then sets the policy where it
lives (``activities/workload_security.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client

from common import account_contract as contract
from common.models import AccountStatus, ManagedAccount
from common.rollouts import InstanceSurvey, RolloutInput


@dataclass
class PolicyRolloutActivities:
    client: Client

    @activity.defn(no_thread_cancel_exception=True)
    async def survey_policy_rollout(self, inp: RolloutInput) -> InstanceSurvey:
        """The protected managed accounts of the rollout's OUs (and ids, tags), and those
        already on the policy (they get nothing)."""
        paths = {ou.path for ou in inp.organizational_units}
        wanted = set(inp.account_ids)
        accounts: dict[str, str] = {}
        current: list[str] = []
        left_out: list[str] = []
        query = f"WorkflowType = '{contract.WORKFLOW}' AND ExecutionStatus = 'Running'"
        async for wf in self.client.list_workflows(query, rpc_timeout=timedelta(seconds=30)):
            account: ManagedAccount | None = await wf.memo_value(
                contract.STATE_MEMO, None, type_hint=ManagedAccount
            )
            if account is None or account.workload_security_connector_id is None:
                continue
            request = account.request
            if request.organizational_unit not in paths:
                continue
            if wanted and account.account_id not in wanted:
                continue
            if any(request.tags.get(k) != v for k, v in inp.tags.items()):
                continue
            if account.status != AccountStatus.active:
                if account.status != AccountStatus.closed:
                    left_out.append(account.account_id)  # a change is moving it
                continue
            accounts[account.account_id] = request.organizational_unit
            if account.workload_security_policy == inp.policy:
                current.append(account.account_id)
            activity.heartbeat(len(accounts))
        return InstanceSurvey(
            template_changes=False,
            regions=[],
            accounts=accounts,
            current=sorted(current),
            left_out=sorted(left_out),
        )
