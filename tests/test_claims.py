"""Claims on names and emails live in the claim registry's shards (``workflows/claim_registry.py``).

What must hold: two requests racing for one name or email cannot both get it; a request that has
ended (refused, rejected, finished, terminated by hand) does not keep a name from the next one;
a sweep drops what ended holders left behind; a claim costs a request no workflow of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client

from common.claims import HELD_QUERY, SWEEP_SIGNAL, claim_key, registry_id
from common.codec import data_converter
from common.temporal_client import workflow_id
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, codec_settings
from tests.waiting import eventually_async

Body = Callable[..., dict[str, Any]]


async def _client(stack: EmbeddedStack) -> Client:
    return await Client.connect(
        stack.config.temporal_address, data_converter=data_converter(codec_settings(stack))
    )


async def _held(client: Client, kind: str, value: str) -> str | None:
    key = claim_key(kind, value)
    held: dict[str, str] = await client.get_workflow_handle(registry_id(key)).query(HELD_QUERY)
    return held.get(key)


def test_requests_racing_for_one_name_and_one_email_get_it_once(api: Api, new_body: Body) -> None:
    first = new_body()  # every one waits for an approval, so each 201 can be cancelled
    racers = [new_body(account_name=first["account_name"]) for _ in range(6)]
    racers += [new_body(account_email=first["account_email"]) for _ in range(6)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda b: api.create("alice", b), [first, *racers]))
    pairs = list(zip(answers, [first, *racers], strict=True))
    by_name = [a for a, b in pairs if b["account_name"] == first["account_name"]]
    by_email = [a for a, b in pairs if b["account_email"] == first["account_email"]]
    # Each racer shares one value with the first request and has the other to itself. Never
    # two live requests with one value; under contention none may win a value: the first can
    # hold the email, refuse an email racer, then lose the name to a name racer and let the
    # email go (claims are all or nothing and a refusal is immediate; seen once in a random
    # order run). Known limit, in README's limits.
    assert sum(a.status_code == 201 for a in by_name) <= 1, [a.status_code for a in by_name]
    assert sum(a.status_code == 201 for a in by_email) <= 1, [a.status_code for a in by_email]
    assert any(a.status_code == 201 for a in answers)
    refused = [a for a in answers if a.status_code != 201]
    assert refused and all(a.status_code == 409 for a in refused), [a.text for a in refused]
    assert all("a live request already uses" in a.json()["detail"] for a in refused)
    for answer in answers:
        if answer.status_code == 201:
            cancel = api.act("alice", answer.json()["id"], "cancel", {"reason": "test done"})
            assert cancel.status_code == 200


async def test_a_request_holds_its_claims_in_the_registry_and_no_claim_workflow(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body()  # waits for an approval: it stays live
    req = api.create("alice", body).json()
    client = await _client(stack)
    holder = workflow_id(req["id"])
    assert await _held(client, "name", body["account_name"]) == holder
    assert await _held(client, "email", body["account_email"].upper()) == holder
    # The registry's keys carry no personal data, and no claim workflow was started.
    shard = registry_id(claim_key("email", body["account_email"]))
    held = await client.get_workflow_handle(shard).query(HELD_QUERY)
    assert body["account_email"] not in str(held)
    children = [w async for w in client.list_workflows(f"ParentWorkflowId = '{holder}'")]
    assert [w.workflow_type for w in children if w.workflow_type != "ManagedAccountWorkflow"] == []
    assert api.act("alice", req["id"], "cancel", {"reason": "test done"}).status_code == 200


async def test_an_ended_request_leaves_its_name_free_at_once(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body()
    first = api.create("alice", body).json()
    assert api.act("bob", first["id"], "reject", {"reason": "not now"}).status_code == 200
    api.wait_for(first["id"], {"rejected"})
    # The rejected request still holds the keys (nobody swept yet); the next one takes them
    # over because its holder has ended.
    again = api.create(
        "alice", new_body(account_name=body["account_name"], account_email=body["account_email"])
    )
    assert again.status_code == 201, again.text
    client = await _client(stack)
    assert await _held(client, "name", body["account_name"]) == workflow_id(again.json()["id"])
    assert api.act("alice", again.json()["id"], "cancel", {"reason": "done"}).status_code == 200


async def test_a_sweep_drops_the_claims_of_a_request_terminated_by_hand(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    body = new_body()
    req = api.create("alice", body).json()
    client = await _client(stack)
    await client.get_workflow_handle(workflow_id(req["id"])).terminate(reason="by hand")
    key = claim_key("name", body["account_name"])
    shard = client.get_workflow_handle(registry_id(key))
    assert (await shard.query(HELD_QUERY)).get(key) == workflow_id(req["id"])
    await shard.signal(SWEEP_SIGNAL)
    await eventually_async(
        lambda: shard.query(HELD_QUERY), lambda held: key not in held, "the claim swept", 10
    )
