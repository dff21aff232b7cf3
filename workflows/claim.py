"""A claim on an account name or email for as long as one request is live.

Temporal lets only one running workflow hold an id, so starting ``claim-email-<digest>`` is an
atomic, cluster-wide reservation; visibility queries are eventually consistent and could let two
simultaneous requests through. The vending workflow starts its claims as children with
``ParentClosePolicy.REQUEST_CANCEL``, so a claim can never outlive the request that made it, and
ends completed when it does (requests started before ``claims-end-completed`` terminate theirs).

Workflow ids are not payloads: the codec does not encrypt them, and they show in the UI, in
visibility and in the server's logs. So the id carries a digest of the normalised value, never
the email itself (requests started before this change keep their plain ids; see ``patched``).
"""

from __future__ import annotations

import asyncio
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
        """Ends *completed*, with why, when the request lets go or closes: a claim that ends is
        its job done, and the Temporal UI should not show it as killed (``TERMINATED``)."""
        try:
            await workflow.wait_condition(lambda: self._released)
        except asyncio.CancelledError:
            # The request closed: its close policy (REQUEST_CANCEL) asks its claims to end.
            return f"released: request {request_id} closed"
        return f"released by request {request_id} (a corrected value replaced it)"

    @workflow.signal
    def release(self) -> None:
        self._released = True
