"""With no worker polling, a request can still be read: from what its workflow recorded in
Temporal at its last status change (the memo, encrypted), marked stale, instead of a 503."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from sandbox.stack import EmbeddedStack
from tests.conftest import Api

Body = Callable[..., dict[str, Any]]


def test_a_request_reads_while_no_worker_runs(
    api: Api,
    stack: EmbeddedStack,
    new_body: Body,
    limited: Callable[[dict[str, str]], httpx.Client],
) -> None:
    # Each read first asks the workflow (which no worker answers) for as long as the query
    # timeout allows; an API of its own with a short one keeps the test to what it shows.
    reader = limited({"VEND_TEMPORAL__QUERY_TIMEOUT_SECONDS": "1"})
    quick = Api(str(reader.base_url), api.tokens)
    done = api.wait_for(
        api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox")).json()[
            "id"
        ],
        {"completed"},
    )
    pending = api.create("alice", new_body()).json()  # waits for approval
    assert pending["status"] == "pending_approval" and pending["stale"] is False
    stack.processes["worker"].stop(timeout=30)
    try:
        read = quick.get("alice", done["id"])
        assert read.status_code == 200, read.text
        view = read.json()
        assert view["stale"] is True
        assert view["status"] == "completed" and view["account_id"] == done["account_id"]
        assert [s["status"] for s in view["steps"]] == [s["status"] for s in done["steps"]]
        waiting = quick.get("alice", pending["id"]).json()
        assert waiting["stale"] is True and waiting["status"] == "pending_approval"
        # The trails too: the request's as recorded, the account's newest lines.
        trail = quick.call("GET", f"/v1/account-requests/{done['id']}/events", "alice")
        assert trail.status_code == 200, trail.text
        assert trail.json()["stale"] is True
        assert trail.json()["items"][-1]["outcome"] == "completed"
        account_trail = quick.call("GET", f"/v1/accounts/{done['account_id']}/events", "alice")
        assert account_trail.status_code == 200, account_trail.text
        assert account_trail.json()["stale"] is True and account_trail.json()["items"]
        # Still nobody else's to see.
        assert quick.get("mallory", done["id"]).status_code == 404
        # The approvers' queue queries no workflow: it answers as before.
        queue = quick.call("GET", "/v1/approvals", "bob", params={"limit": 100})
        assert queue.status_code == 200, queue.text
        cursor = queue.json()["next_cursor"]
        found = {d["id"] for d in queue.json()["items"]}
        while pending["id"] not in found and cursor:
            queue = quick.call("GET", "/v1/approvals", "bob", params={"cursor": cursor})
            found |= {d["id"] for d in queue.json()["items"]}
            cursor = queue.json()["next_cursor"]
        assert pending["id"] in found
    finally:
        stack.start_worker()
    assert api.get("alice", done["id"]).json()["stale"] is False
