"""The approvers' queue (GET /v1/approvals): what each approver may still decide, read from
what the requests recorded, paged, and 304 while it has not changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Api
from tests.waiting import eventually, wait_until

Body = Callable[..., dict[str, Any]]


def _queue(api: Api, user: str) -> list[dict[str, Any]]:
    """Every page of ``user``'s queue."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", "/v1/approvals", user, params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def _ids(api: Api, user: str) -> set[str]:
    return {d["id"] for d in _queue(api, user)}


def _eventually(check: Callable[[], bool], what: str) -> None:
    """Visibility is eventually consistent: what a change did shows a moment later."""
    wait_until(check, what, timeout=15)


def test_each_approver_sees_what_they_may_still_decide(api: Api, new_body: Body) -> None:
    prod = api.create("alice", new_body(organizational_unit="Workloads/Prod", environment="prod"))
    assert prod.status_code == 201, prod.text
    mine = api.create("erin", new_body())  # erin may approve, but not her own
    assert mine.status_code == 201, mine.text
    prod_id, erins = prod.json()["id"], mine.json()["id"]

    _eventually(lambda: {prod_id, erins} <= _ids(api, "bob"), "both in bob's queue")
    _eventually(lambda: prod_id in _ids(api, "erin"), "alice's in erin's queue")
    assert erins not in _ids(api, "erin")
    # The queue carries what a card shows: the request, its approvals and its plan.
    card = next(d for d in _queue(api, "dave") if d["id"] == prod_id)
    assert card["request"]["organizational_unit"] == "Workloads/Prod"
    assert card["approvals_required"] == 2 and card["plan"]["steps"]

    # bob approves one of two: gone from his queue, still in dave's, with bob's approval.
    assert api.act("bob", prod_id, "approve", {}).status_code == 200
    _eventually(lambda: prod_id not in _ids(api, "bob"), "gone from bob's queue")
    card = next(d for d in _queue(api, "dave") if d["id"] == prod_id)
    assert [a["by"] for a in card["approvals"]] == ["bob"]
    assert api.call("GET", "/v1/approvals", "alice").status_code == 403

    for request_id, user in ((prod_id, "alice"), (erins, "erin")):
        assert api.act(user, request_id, "cancel", {"reason": "test done"}).status_code == 200
    _eventually(lambda: not {prod_id, erins} & _ids(api, "dave"), "cancelled ones gone")


def test_the_queue_pages_and_answers_304_while_unchanged(api: Api, new_body: Body) -> None:
    made = [api.create("alice", new_body()).json()["id"] for _ in range(2)]
    first = api.call("GET", "/v1/approvals", "bob", params={"limit": 1})
    assert first.status_code == 200 and len(first.json()["items"]) <= 1
    assert first.json()["next_cursor"], "two requests wait: a page of one has a next"
    bad = api.call("GET", "/v1/approvals", "bob", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    # Unchanged: 304 to its ETag (other tests' requests may move in between: ask again).
    for _ in range(5):
        etag = api.call("GET", "/v1/approvals", "bob", params={"limit": 100}).headers["ETag"]
        again = _conditional(api, etag)
        if again.status_code == 304:
            break
    assert again.status_code == 304 and again.content == b""
    for request_id in made:
        api.act("alice", request_id, "cancel", {"reason": "test done"})
    # Changed (once visibility has the cancellations): the page itself, with a new ETag.
    changed = eventually(
        lambda: _conditional(api, etag),
        lambda page: (
            page.status_code == 200 and not set(made) & {d["id"] for d in page.json()["items"]}
        ),
        "the cancelled requests gone from the queue",
        timeout=15,
    )
    assert changed.headers["ETag"] != etag


def _conditional(api: Api, etag: str) -> httpx.Response:
    return api.call(
        "GET", "/v1/approvals", "bob", params={"limit": 100}, headers={"If-None-Match": etag}
    )
