"""Reading what a workflow recorded in its memo, for a page of a list: only the fields a row
shows, and a request's whole recorded state decoded once per change, not once per look.

A list page decodes one memo per row. ``WorkflowExecution.memo()`` decrypts and parses every
field, the request's whole state among them (its steps, approvals and events), to show four
short fields; and the approvals queue, which needs that state, is refreshed by every approver
every few seconds while the states change far less often (the portal benchmark).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from temporalio.client import WorkflowExecution

from common import vending_contract as contract
from common.models import RequestState


async def fields(wf: WorkflowExecution, *names: str) -> dict[str, Any]:
    """The named memo fields (absent ones: None), decoding nothing else."""
    return {name: await wf.memo_value(name, None) for name in names}


class DecodedStates:
    """Request states by the digest of the payload they were decoded from (the ciphertext,
    unique per write): a changed state is a new payload, so nothing stale is ever served.
    Bounded, least recently used first out. Callers must not change what they get."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._items: OrderedDict[bytes, RequestState] = OrderedDict()

    async def state(self, wf: WorkflowExecution) -> RequestState | None:
        raw = wf.raw_info.memo.fields.get(contract.STATE_MEMO)
        if raw is None:
            return None
        key = hashlib.blake2b(
            wf.id.encode() + b"\0" + raw.SerializeToString(deterministic=True), digest_size=20
        ).digest()
        if (found := self._items.get(key)) is not None:
            self._items.move_to_end(key)
            return found
        state: RequestState | None = await wf.memo_value(
            contract.STATE_MEMO, None, type_hint=RequestState
        )
        if state is not None:
            self._items[key] = state
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return state


STATES = DecodedStates()
