"""People hear about what needs them: signed webhooks on the status changes that matter."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from common.webhook_signature import REPLAY_WINDOW_SECONDS, sign
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, decommission_when_managed, parked_request
from tests.waiting import eventually

Body = Callable[..., dict[str, Any]]


def _received(stack: EmbeddedStack, request_id: str, event: str) -> dict[str, Any]:
    found = eventually(
        lambda: [
            i
            for i in httpx.get(stack.config.webhook_url).json()["items"]
            if i["request_id"] == request_id and i["event"] == event
        ],
        bool,
        f"a {event} notification for {request_id}",
        timeout=20,
    )
    return dict(found[0])


def test_parked_request_notifies_operators_with_the_error(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = parked_request(api, sandbox, body)
    note = _received(stack, req["id"], "waiting_for_operator")
    assert note["step"] == "create_account"
    assert "ACCOUNT_LIMIT_EXCEEDED" in note["error"]
    api.act("carol", req["id"], "retry", {"step": "create_account"})
    api.wait_for(req["id"], {"completed"})
    assert _received(stack, req["id"], "completed")["status"] == "completed"


def test_approvers_hear_of_new_requests_and_requesters_of_decisions(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    req = api.create("alice", new_body()).json()
    assert _received(stack, req["id"], "needs_approval")["requested_by"] == "alice"
    api.act("bob", req["id"], "reject", {"reason": "use the shared account"})
    assert _received(stack, req["id"], "rejected")["status"] == "rejected"


def test_deliveries_are_signed_and_a_forged_or_replayed_one_is_refused(
    stack: EmbeddedStack,
) -> None:
    """The signature covers ``timestamp.body``: a captured delivery cannot be sent again later
    (stale timestamp), nor at once (the sink keeps what it saw), nor with its body changed."""
    body = json.dumps({"event": "completed", "request_id": "x", "status": "completed"}).encode()
    secret = stack.secrets["webhook_secret"].encode()

    def post(timestamp: int, signature: str, content: bytes = body) -> int:
        headers = {"X-Vend-Timestamp": str(timestamp), "X-Vend-Signature": signature}
        return httpx.post(stack.config.webhook_url, content=content, headers=headers).status_code

    now = int(time.time())
    assert post(now, "sha256=" + "0" * 64) == 401
    old_style = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()  # body only
    assert post(now, old_style) == 401
    stale = now - REPLAY_WINDOW_SECONDS - 5
    assert post(stale, sign(secret, stale, body)) == 401
    good = sign(secret, now, body)
    assert post(now, good, body.replace(b"completed", b"rejected", 1)) == 401
    assert post(now, good) == 200
    assert post(now, good) == 409  # the same delivery again: a replay


def _mail(stack: EmbeddedStack, account_name: str, event: str, about: str = "") -> dict[str, Any]:
    found = eventually(
        lambda: [
            m
            for m in httpx.get(stack.config.mail_url + ".json").json()["items"]
            if account_name in m["subject"] and m["event"] == event and about in m["subject"]
        ],
        bool,
        f"a {event} mail about {account_name}",
        timeout=20,
    )
    return dict(found[0])


def test_each_person_gets_the_mail_that_concerns_them(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    """created, needs approval, approved, completed: over SMTP to the embedded stack's sink."""
    body = new_body(
        organizational_unit="Workloads/SDLC",
        environment="dev",
        expected_instances={"micro_to_medium": 3},
    )
    req = api.create("alice", body).json()
    name = body["account_name"]
    created = _mail(stack, name, "created")
    assert sorted(created["to"]) == sorted({"alice@example.com", body["owner_email"]})
    needs = _mail(stack, name, "needs_approval")
    assert "alice@example.com" not in needs["to"]
    assert {"bob@example.com", "dave@example.com"} <= set(needs["to"])
    assert f"#/requests/{req['id']}" in needs["text"]  # a link to the page
    # What they approve costs: the sheet's figures (only Workload Security is discounted).
    assert "Workload Security $22.89/month" in needs["text"]
    assert "managed operations ¥35,000/month and ¥100,000 once" in needs["text"]
    api.act("bob", req["id"], "approve", {"comment": "ok"})
    assert _mail(stack, name, "approved")["to"]
    api.wait_for(req["id"], {"completed"})
    done = _mail(stack, name, "completed")
    assert "ready" in done["subject"]
    assert _received(stack, req["id"], "created")  # the webhook hears the same events
    page = httpx.get(stack.config.mail_url)
    assert page.status_code == 200 and name in page.text


def test_a_decommission_is_mailed_as_one_not_as_a_new_account(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    vend = api.wait_for(api.create("alice", body).json()["id"], {"completed"}, timeout=120)
    name = body["account_name"]
    change = decommission_when_managed(api, vend["account_id"], name)
    needs = _mail(stack, name, "needs_approval", about="decommission")
    assert {"bob@example.com", "dave@example.com"} <= set(needs["to"])
    assert "The decommission request for" in needs["text"]
    api.act("bob", change["id"], "approve", {})
    api.wait_for(change["id"], {"completed"}, timeout=120)
    done = _mail(stack, name, "completed", about="decommission done")
    assert body["owner_email"] in done["to"] and "ready" not in done["subject"]
    assert _received(stack, change["id"], "completed")["kind"] == "decommission"


def test_operators_are_mailed_when_a_request_waits_for_them(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body(organizational_unit="Sandbox", environment="sandbox")
    req = parked_request(api, sandbox, body)
    mail = _mail(stack, body["account_name"], "waiting_for_operator")
    assert mail["to"] == ["carol@example.com"]
    assert "ACCOUNT_LIMIT_EXCEEDED" in mail["text"]
    api.act("carol", req["id"], "cancel", {"reason": "test done"})


def test_a_last_word_the_receiver_refused_is_sent_again_once(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    """The rejection is sent inside the workflow task that closes the request (a local
    activity, two tries); the receiver refuses three deliveries, so the last one goes out as an
    ordinary activity with its own retries, and arrives once."""
    req = api.create("alice", new_body()).json()
    _received(stack, req["id"], "needs_approval")
    hooks = stack.config.webhook_url
    httpx.post(hooks.replace("/hooks", "/_sandbox/fail-next"), json={"times": 3}).raise_for_status()
    api.act("bob", req["id"], "reject", {"reason": "not now"})
    assert api.wait_for(req["id"], {"rejected"})["status"] == "rejected"
    assert _received(stack, req["id"], "rejected")["status"] == "rejected"
    items = httpx.get(hooks).json()["items"]
    assert [i["event"] for i in items if i["request_id"] == req["id"]].count("rejected") == 1
