"""An open-loop load generator (a separate process, as a real client fleet would be).

Requests are sent on a fixed schedule whatever the server does, and each latency is measured
from when the request was *due*, not when it was sent, so a slow server cannot hide its
queueing (no coordinated omission). Prints one JSON document with every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

import httpx


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--plan", required=True, help="JSON: tokens, request ids, bodies")
    args = parser.parse_args()
    with open(args.plan) as f:  # noqa: ASYNC230 (once, before the clock starts)
        plan = json.load(f)
    requester = {"Authorization": f"Bearer {plan['requester_token']}"}
    approver = {"Authorization": f"Bearer {plan['approver_token']}"}
    readable: list[str] = plan["request_ids"]
    approvable: list[str] = list(plan["approvable_ids"])
    bodies: list[dict[str, Any]] = plan["bodies"]
    rng = random.Random(7)
    samples: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=args.url, timeout=30, limits=limits) as client:

        async def one(due: float, op: str) -> None:
            status: int | str
            try:
                if op == "create":
                    resp = await client.post(
                        "/v1/account-requests", json=bodies.pop(), headers=requester
                    )
                elif op == "get":
                    rid = rng.choice(readable)
                    resp = await client.get(f"/v1/account-requests/{rid}", headers=requester)
                elif op == "list":
                    resp = await client.get("/v1/account-requests?limit=20", headers=requester)
                else:
                    rid = approvable.pop()
                    resp = await client.post(
                        f"/v1/account-requests/{rid}/approve", json={}, headers=approver
                    )
                status = resp.status_code
            except httpx.HTTPError as err:
                status = f"error: {type(err).__name__}"
            samples.append({"op": op, "status": status, "latency": time.monotonic() - due})

        ops = ["create"] * 2 + ["get"] * 5 + ["list"] * 2 + ["approve"]
        tasks = []
        start = time.monotonic() + 0.5
        total = int(args.rate * args.duration)
        for i in range(total):
            due = start + i / args.rate
            op = rng.choice(ops)
            if op == "approve" and not approvable:
                op = "get"
            if op == "create" and not bodies:
                op = "get"
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due, op)))
        await asyncio.gather(*tasks)
    json.dump({"samples": samples, "rate": args.rate, "duration": args.duration}, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
