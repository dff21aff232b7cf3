"""How the inventory's per-account workflow is reached: its type, id and message names.

As with ``vending_contract``, the API and the CLI use these names and never import the workflow
module; the strings are part of the history format.
"""

from __future__ import annotations

from typing import Final

WORKFLOW: Final = "ManagedAccount"
ID_PREFIX: Final = "account-"

# Signals: the request workflows tell the account what they want and what they did.
CHANGE_REQUESTED: Final = "change_requested"
CHANGE_FINISHED: Final = "change_finished"
# The drift check tells the account what it found there (``common/drift.py``).
DRIFT_CHECKED: Final = "drift_checked"
# A rollout tells the account what it changed there: a baseline its OU gained, another
# Workload Security policy (``common/rollouts.py``).
ROLLOUT_APPLIED: Final = "rollout_applied"
# The account's answer to a request workflow: its turn has come.
TURN_SIGNAL: Final = "account_turn"

# Queries.
GET_ACCOUNT: Final = "get_account"
GET_EVENTS: Final = "get_account_events"

STATE_MEMO: Final = "account"  # the account as last recorded: read while no worker answers
# Its newest events as last recorded (the trail's last MEMO_EVENTS lines), for the same reads.
EVENTS_MEMO: Final = "recent_events"
MEMO_EVENTS: Final = 20
# What the account's workflow keeps of its trail (oldest dropped first), and of one line's
# detail: a request's own trail, justification and all, stays readable on the request.
EVENT_WINDOW: Final = 500
EVENT_DETAIL_CHARS: Final = 300
REQUEST_WINDOW: Final = 500  # request ids listed on the record; older ones are in visibility


def account_workflow_id(account_id: str) -> str:
    return f"{ID_PREFIX}{account_id}"
