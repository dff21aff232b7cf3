"""What a whole OU looks like, read once per drift check rather than once per account.

Asked of each account, a check of 10,000 costs 20,000 Organizations calls (ListParents, and
DescribeAccount for Control Tower's ARN) and 10,000 Control Tower calls: at the ten calls a
second these APIs bear, more than half an hour. Asked of each OU, it costs a page of twenty
accounts (ListAccountsForParent) and a page of a hundred enrollments (ListEnabledBaselines of the
OU's children) each: 600 calls for the same 10,000, a minute. The check names the OUs worth it
(``InspectInput.surveys``: those with a page's worth of accounts to check); each worker reads
each of them once per run of a check, all of them from the first batch on and both APIs at
once, while each batch waits for its own OUs'; it keeps the last few runs' surveys. An account
the survey did not find where its record says (moved, or joined since) is asked of on its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from activities.control_tower import ControlTowerActivities
from activities.heartbeats import keepalive

KEPT_CHECKS = 4  # surveys of this many check runs stay in memory (their batches reuse them)
WAIT_SLICE_SECONDS = 1.0


@dataclass
class OuSurvey:
    members: dict[str, str]  # account id -> account ARN, for the accounts in the OU
    enrollments: dict[str, str] | None  # account ARN -> enrollment status (None: not asked)

    def arn_of(self, account_id: str) -> str | None:
        """Any account's ARN in this organization, from a member's (they differ only in the
        account id): an account that left the OU is asked of without a DescribeAccount."""
        for member, arn in self.members.items():
            if arn.endswith("/" + member):
                return arn[: -len(member)] + account_id
        return None


@dataclass
class FleetSurvey:
    organizations: Any
    control_tower: ControlTowerActivities
    _surveys: OrderedDict[tuple[str, str, bool], Future[OuSurvey]] = field(
        default_factory=OrderedDict, init=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # Two pools: a survey waits on its Control Tower half, which must never queue behind it.
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="drift-survey"),
        init=False,
    )
    _ct_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="drift-survey-ct"),
        init=False,
    )

    def start(self, survey_id: str, ou_id: str, control_tower: bool) -> Future[OuSurvey]:
        """The OU's survey for this check: started now if no batch of it has started it."""
        key = (survey_id, ou_id, control_tower)
        with self._lock:
            found = self._surveys.get(key)
            if found is not None and not (found.done() and found.exception() is not None):
                return found
            future = self._pool.submit(self._survey, ou_id, control_tower)
            self._surveys[key] = future  # a failed survey is read again by the next asker
            checks = list(dict.fromkeys(k[0] for k in self._surveys))
            for old in checks[:-KEPT_CHECKS]:
                for k in [k for k in self._surveys if k[0] == old]:
                    del self._surveys[k]
            return future

    def get(self, survey_id: str, ou_id: str, control_tower: bool) -> OuSurvey:
        """Wait for the OU's survey, heartbeating: another batch may be reading it."""
        future = self.start(survey_id, ou_id, control_tower)
        while True:
            keepalive()
            try:
                return future.result(timeout=WAIT_SLICE_SECONDS)
            except TimeoutError:
                continue

    def _survey(self, ou_id: str, control_tower: bool) -> OuSurvey:
        """Both APIs at once: each has a rate of its own."""
        enrollments = self._ct_pool.submit(self._enrollments, ou_id) if control_tower else None
        members = {
            str(account["Id"]): str(account["Arn"])
            for page in self.organizations.get_paginator("list_accounts_for_parent").paginate(
                ParentId=ou_id, PaginationConfig={"PageSize": 20}
            )
            for account in page["Accounts"]
        }
        return OuSurvey(members=members, enrollments=enrollments.result() if enrollments else None)

    def _enrollments(self, ou_id: str) -> dict[str, str]:
        return self.control_tower.enrollments_through(self.control_tower.ou_arn(ou_id))
