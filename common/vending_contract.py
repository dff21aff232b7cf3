"""How the vending workflow is reached from outside it: its type and the names of its messages.

The API and the CLI start, query and update requests by these names, so they never import the
workflow module (and with it the activities and boto3); the workflow declares the same names, and
``tests/test_layout.py`` checks that both sides agree. Renaming one breaks running requests and
the committed histories: these strings are part of the history format.
"""

from __future__ import annotations

from typing import Final

WORKFLOW: Final = "AccountVending"

# Updates: decisions, each checked by the workflow's validator before it is written to history.
SUBMIT: Final = "submit"
APPROVE: Final = "approve"
REJECT: Final = "reject"
CANCEL: Final = "cancel"
RETRY: Final = "retry"
SKIP: Final = "skip"

# Queries.
GET_STATE: Final = "get_state"
GET_EVENTS: Final = "get_events"

# The memo key under which the workflow records its state at every status change: what reads
# are answered from while no worker polls (marked stale).
STATE_MEMO: Final = "state"
# Beside it, the request's trail as it stood then (its last MEMO_EVENTS events).
EVENTS_MEMO: Final = "events"
MEMO_EVENTS: Final = 200

UPDATES: Final = (SUBMIT, APPROVE, REJECT, CANCEL, RETRY, SKIP)
QUERIES: Final = (GET_STATE, GET_EVENTS)
