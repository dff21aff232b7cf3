"""A claim on an account name or email for as long as one request is live.

Temporal lets only one running workflow hold an id, so starting ``claim-email-<email>`` is an
atomic, cluster-wide reservation; visibility queries are eventually consistent and could let two
simultaneous requests through. The vending workflow starts its claims as children with
``ParentClosePolicy.TERMINATE``, so a claim can never outlive the request that made it.
"""

from __future__ import annotations

from temporalio import workflow


def claim_id(kind: str, value: str) -> str:
    return f"claim-{kind}-{value.lower()}"


@workflow.defn
class AccountClaim:
    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self, request_id: str) -> str:
        await workflow.wait_condition(lambda: self._released)
        return request_id

    @workflow.signal
    def release(self) -> None:
        self._released = True
