"""The portal's load, open loop, in a process of its own: reads (a request's detail, the request
list, the approvals queue, the inventory) at a fixed rate with creates beside them.

``--through api`` sends every read to the API as the page does. ``--through temporal`` makes,
for each read, only the Temporal call that read needs (the request's state query, or the first
page of the same visibility query the API builds), so the two runs' latencies say what the API
adds on top of Temporal. Latency is measured from when a call was due (no coordinated
omission). Prints one JSON document with every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

READS = {"detail": 4, "requests": 2, "approvals": 2, "accounts": 2}


def _schedule(
    rate: float, writes: float, duration: float, only: str | None = None
) -> list[tuple[float, str]]:
    rng = random.Random(11)
    kinds = [only] if only else [k for k, w in READS.items() for _ in range(w)]
    due = [(i / rate, rng.choice(kinds)) for i in range(int(rate * duration))]
    if writes > 0:
        due += [(i / writes, "create") for i in range(int(writes * duration))]
    return sorted(due)


async def _api_calls(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    client = httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits)
    auth = {who: {"Authorization": f"Bearer {t}"} for who, t in plan["tokens"].items()}
    rng = random.Random(5)
    bodies = list(plan["bodies"])

    async def detail() -> int:
        rid = rng.choice(plan["request_ids"])
        return (await client.get(f"/v1/account-requests/{rid}", headers=auth["alice"])).status_code

    async def requests() -> int:
        got = await client.get("/v1/account-requests?limit=20", headers=auth["alice"])
        return got.status_code

    async def approvals() -> int:
        return (await client.get("/v1/approvals?limit=20", headers=auth["bob"])).status_code

    async def accounts() -> int:
        return (await client.get("/v1/accounts?limit=20", headers=auth["carol"])).status_code

    async def create() -> int:
        got = await client.post("/v1/account-requests", json=bodies.pop(), headers=auth["alice"])
        return got.status_code

    return {
        "calls": {
            "detail": detail,
            "requests": requests,
            "approvals": approvals,
            "accounts": accounts,
            "create": create,
        },
        "close": client.aclose,
    }


async def _temporal_calls(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    """The same reads as bare Temporal calls, built by the API's own query functions; creates
    still go through the API, so the server carries the same writes."""
    from api.services import accounts as account_service
    from api.services import requests as request_service
    from api.temporal_calls import query_timeout, rpc_timeout
    from common import search_attributes as sa
    from common import vending_contract as contract
    from common.models import Principal, RequestState, RequestStatus, Role
    from common.settings import Settings
    from common.temporal_client import connect, workflow_id

    settings = Settings()
    temporal = await connect(settings.temporal, settings.codec)
    alice = Principal(sub="alice", email="alice@example.com", roles=[Role.requester])
    carol = Principal(sub="carol", email="carol@example.com", roles=[Role.operator])
    rng = random.Random(5)
    api = await _api_calls(args, plan)

    async def page(clauses: list[str]) -> int:
        it = temporal.list_workflows(
            " AND ".join(clauses), page_size=20, rpc_timeout=rpc_timeout(settings)
        )
        await it.fetch_next_page(page_size=20)
        return 200

    async def detail() -> int:
        handle = temporal.get_workflow_handle(workflow_id(rng.choice(plan["request_ids"])))
        await handle.query(
            contract.GET_STATE, result_type=RequestState, rpc_timeout=query_timeout(settings)
        )
        return 200

    approval_clauses = [
        f"WorkflowType = {sa.quote(contract.WORKFLOW)}",
        f"{sa.STATUS.name} = {sa.quote(RequestStatus.pending_approval.value)}",
        f"{sa.REQUESTER.name} != {sa.quote('bob')}",
    ]
    account_clauses = account_service.list_clauses(
        carol, settings, organizational_unit=None, status=None, owner=None, drifted=None
    )
    return {
        "calls": {
            "detail": detail,
            "requests": lambda: page(request_service.list_clauses(alice, None, None)),
            "approvals": lambda: page(approval_clauses),
            "accounts": lambda: page(account_clauses),
            "create": api["calls"]["create"],
        },
        "close": api["close"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--through", choices=["api", "temporal"], default="api")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--writes", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--plan", required=True, help="JSON: tokens, request ids, bodies")
    parser.add_argument("--only", choices=sorted(READS), help="one kind of read alone")
    args = parser.parse_args()
    with open(args.plan) as f:  # noqa: ASYNC230 (once, before the clock starts)
        plan = json.load(f)
    made = await (_api_calls if args.through == "api" else _temporal_calls)(args, plan)
    calls: dict[str, Callable[[], Awaitable[int]]] = made["calls"]
    samples: list[dict[str, Any]] = []

    async def one(due: float, op: str) -> None:
        status: int | str
        try:
            status = await calls[op]()
        except Exception as err:  # every failure is a sample, never a crash of the load
            status = f"error: {type(err).__name__}: {str(err)[:120]}"
        samples.append({"op": op, "status": status, "latency": time.monotonic() - due})

    tasks = []
    start = time.monotonic() + 0.5
    for offset, op in _schedule(args.rate, args.writes, args.duration, args.only):
        due = start + offset
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, op)))
    await asyncio.gather(*tasks)
    await made["close"]()
    json.dump({"samples": samples}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
