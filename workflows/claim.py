"""A claim on an account name or email for as long as one request is live.

Temporal lets only one running workflow hold an id, so starting ``claim-email-<digest>`` is an
atomic, cluster-wide reservation; visibility queries are eventually consistent and could let two
simultaneous requests through. The vending workflow starts its claims as children with
``ParentClosePolicy.TERMINATE``, so a claim can never outlive the request that made it.

Workflow ids are not payloads: the codec does not encrypt them, and they show in the UI, in
visibility and in the server's logs. So the id carries a digest of the normalised value, never
the email itself (requests started before this change keep their plain ids; see ``patched``).
"""

from __future__ import annotations

import hashlib

from temporalio import workflow


def claim_id(kind: str, value: str, *, hashed: bool = True) -> str:
    if not hashed:
        return f"claim-{kind}-{value.lower()}"
    digest = hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()[:40]
    return f"claim-{kind}-{digest}"


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
