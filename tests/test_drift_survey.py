"""A drift check of many accounts in one OU reads the OU whole, not each account (the fleet
benchmark's design, against the sandbox): a page of twenty accounts per Organizations call and a
page of a hundred enrollments per Control Tower call, and an account moved by hand is still
found, by asking of it on its own."""

from __future__ import annotations

import uuid

from temporalio.client import Client

from common.codec import data_converter
from sandbox import fleet
from sandbox.stack import EmbeddedStack
from tests.conftest import Api, Sandbox, codec_settings
from tests.waiting import eventually, wait_until

OU = "Experiments/Fleet"
COUNT = 45


def _calls(sandbox: Sandbox, *actions: str) -> dict[str, int]:
    calls = sandbox.state()["calls"]
    return {a: int(calls.get(a, 0)) for a in actions}


async def test_a_check_of_a_large_ou_reads_it_whole_and_still_finds_a_moved_account(
    api: Api, sandbox: Sandbox, stack: EmbeddedStack
) -> None:
    endpoint = stack.config.aws_endpoint
    prefix = f"fl-{uuid.uuid4().hex[:8]}"
    accounts = fleet.seed_at_once(endpoint, OU, COUNT, prefix, control_tower=True)
    org = fleet.client(endpoint, "organizations")
    ou_id = fleet.ou_id(org, OU)
    client = await Client.connect(
        stack.config.temporal_address, data_converter=data_converter(codec_settings(stack))
    )
    await fleet.seed_inventory(
        client,
        accounts,
        OU,
        ou_id,
        task_queue="account-vending",
        owners=["alice@example.com"],
        owner_key=b"fleet-test",
        control_tower=True,
    )
    wait_until(
        lambda: all(
            api.call("GET", f"/v1/accounts/{a}", "carol").status_code == 200 for a in accounts
        ),
        "the seeded accounts in the inventory",
    )
    moved = accounts[7]
    ungoverned = fleet.ou_id(org, "Experiments/Ungoverned")
    org.move_account(AccountId=moved, SourceParentId=ou_id, DestinationParentId=ungoverned)

    actions = (
        "organizations:ListAccountsForParent",
        "organizations:ListParents",
        "organizations:DescribeAccount",
        "controltower:ListEnabledBaselines",
    )
    before = _calls(sandbox, *actions)
    started = api.call("POST", "/v1/drift-checks", "carol", json={"account_ids": accounts})
    assert started.status_code == 201, started.text
    check_id = started.json()["id"]
    view = eventually(
        lambda: api.call("GET", f"/v1/drift-checks/{check_id}", "carol").json(),
        lambda v: v["status"] != "running",
        "the drift check's end",
        timeout=120,
    )
    after = _calls(sandbox, *actions)
    used = {a: after[a] - before[a] for a in actions}
    assert view["status"] == "completed", view
    assert view["result"]["checked"] == COUNT and view["result"]["drifted"] == 1, view
    assert view["result"]["by_kind"] == {"organizational_unit": 1, "control_tower": 1}
    # The OU whole: 44 accounts in three pages of twenty (other tests' accounts may share the
    # OU, so at least that); the moved account alone asked of on its own, with the two calls
    # that asking of an account's enrollment takes. Asked of each, it would be 45, 45 and 45.
    assert used["organizations:ListAccountsForParent"] >= 3, used
    assert used["organizations:ListParents"] <= 3, used
    assert used["organizations:DescribeAccount"] <= 3, used
    assert used["controltower:ListEnabledBaselines"] <= 5, used

    found = eventually(
        lambda: api.call("GET", f"/v1/accounts/{moved}", "carol").json()["drift"],
        bool,
        "the moved account's drift on its record",
    )
    assert {d["what"] for d in found} == {"organizational_unit", "control_tower"}, found
    assert api.call("GET", f"/v1/accounts/{accounts[0]}", "carol").json()["drift"] == []
    # A seeded account has the execution role Organizations makes (made when first looked at).
    roles = sandbox.member_client(accounts[3], "iam").list_roles()["Roles"]
    assert "OrganizationAccountAccessRole" in {r["RoleName"] for r in roles}
