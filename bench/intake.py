"""Intake: a burst of account requests, as a team's onboarding script or a migration files them.

1,000 creates from 32 concurrent clients, each filing its next as soon as the last was answered
(closed loop), against the embedded stack. A create is accepted when it answers 201: the
request was validated (Organizations and Sunny Pay look-ups) and its workflow started. Measured:
errors, the sustained rate (creates over the makespan from the first sent to the last answered)
and each create's latency. AFT starts at most 12 account requests an hour.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from bench.harness import (
    Result,
    aws_calls,
    body,
    calls_since,
    cpu_seconds,
    per_item,
    percentile,
    stack,
)
from bench.overhead import tasks_per_request

OU = "Bench/Waiting"  # approval needed: the requests wait, as most do after filing
CLIENTS = 32
GOAL_RATE = 20.0
GOAL_P99_MS = 1000.0
SAMPLE = 50  # requests whose histories are read for the Temporal work per create


async def _burst(url: str, token: str, n: int, clients: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: list[str] = []
    ids: list[str] = []
    todo = iter(range(n))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one_client() -> None:
            for _ in todo:
                started = time.perf_counter()
                try:
                    resp = await client.post("/v1/account-requests", json=body(OU), headers=headers)
                    if resp.status_code != 201:
                        errors.append(f"{resp.status_code} {resp.text[:200]}")
                    else:
                        ids.append(resp.json()["id"])
                except httpx.HTTPError as err:
                    errors.append(f"{type(err).__name__}: {err}")
                latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        makespan = time.perf_counter() - began
    return {"latencies": latencies, "errors": errors, "makespan": makespan, "ids": ids}


def run(n: int | None = None) -> Result:
    n = n or int(os.environ.get("BENCH_INTAKE_N", "1000"))
    with stack(create_account_seconds=0.2, sunnypay_activation_seconds=0.0) as s:
        tokens = s.tokens()
        calls_before = aws_calls(s.config.aws_endpoint)
        before = cpu_seconds(s)
        found = asyncio.run(_burst(s.config.api_url, tokens["alice"], n, CLIENTS))
        after = cpu_seconds(s)
        calls_after = aws_calls(s.config.aws_endpoint)
        sample = found["ids"][:: max(1, len(found["ids"]) // SAMPLE)][:SAMPLE]
        # the claim shards serve the whole burst: their tasks divided among all its creates
        temporal_work = asyncio.run(tasks_per_request(s.config.temporal_address, sample, n))
    ms = found["latencies"]
    rate = n / found["makespan"]
    p99 = percentile(ms, 99)
    errors = found["errors"]
    cpu = {k: round(after[k] - before.get(k, 0.0), 1) for k in after}
    return Result(
        name="intake",
        goal=f"{n} creates from {CLIENTS} clients: 0 errors, >= {GOAL_RATE:.0f} creates/s, "
        f"create p99 <= {GOAL_P99_MS:.0f} ms",
        met_goal=not errors and rate >= GOAL_RATE and p99 <= GOAL_P99_MS,
        summary=(
            f"intake: {n} creates from {CLIENTS} clients in {found['makespan']:.1f}s = "
            f"{rate:.1f}/s (goal >= {GOAL_RATE:.0f}), p50 {percentile(ms, 50):.0f} ms, p99 "
            f"{p99:.0f} ms (goal <= {GOAL_P99_MS:.0f}), {len(errors)} errors"
        ),
        figures={
            "creates": n,
            "clients": CLIENTS,
            "makespan_seconds": round(found["makespan"], 1),
            "creates_per_second": round(rate, 1),
            "create_ms": {f"p{q}": round(percentile(ms, q), 1) for q in (50, 90, 95, 99)}
            | {"max": round(max(ms), 1)},
            "errors": len(errors),
            "first_errors": errors[:5],
            "cpu_seconds_during_burst": cpu,
            "cpu_ms_per_create": per_item(cpu, n, 1000),
            "aws_calls_per_create": per_item(calls_since(calls_before, calls_after), n),
            "temporal_work_per_create": temporal_work,
        },
        limits=(
            "Each create is an update-with-start: the API starts the request's workflow and "
            "waits for its validation (activities on the worker: Organizations and Sunny Pay "
            "look-ups) before answering. The dev server (SQLite), the worker, the API, the "
            "sandbox and the 32 clients share two cores; CPU seconds per process during the "
            "burst say where the time went."
        ),
    )
