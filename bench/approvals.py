"""The approvers' queue under watch: 1,000 requests waiting for approval and 10 approvers with
the Approvals page open, each page refreshing every 2 seconds (the pages opened at different
moments, so they refresh out of step).

Two ways of loading the queue, in the same run on the same stack:
- per-request (the page before /v1/approvals): list 50 summaries, then read each request, which
  is one workflow query on a worker, 50 per refresh per approver;
- the queue: one GET /v1/approvals?limit=50 a refresh, answered from what the requests recorded
  in visibility (no workflow query), with the previous answer's ETag (304 when unchanged).
Reported for each: worker queries per second, queue-load latency (p50, p99) and the worker's
CPU over the phase.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import Result, cpu_seconds, file_requests, percentile, stack

OU = "Bench/Waiting"
APPROVERS = 10
REFRESH = 2.0  # the web page's POLL_MS
PHASE = 30.0
PAGE = 50


def _watch(
    api: httpx.Client, headers: dict[str, str], load: str, offset: float
) -> tuple[list[float], int]:
    """One approver's page for a phase: each refresh's latency, and the worker queries made.
    Pages opened at different moments (``offset``) refresh out of step, as people's do."""
    time.sleep(offset)
    latencies: list[float] = []
    queries = 0
    etag: str | None = None
    deadline = time.monotonic() + PHASE
    while time.monotonic() < deadline:
        started = time.perf_counter()
        if load == "per_request":
            page = api.get(
                f"/v1/account-requests?status=pending_approval&limit={PAGE}", headers=headers
            ).json()
            for item in page["items"]:
                api.get(f"/v1/account-requests/{item['id']}", headers=headers).raise_for_status()
                queries += 1
        else:
            conditional = {**headers, **({"If-None-Match": etag} if etag else {})}
            resp = api.get(f"/v1/approvals?limit={PAGE}", headers=conditional)
            assert resp.status_code in (200, 304), resp.text
            etag = resp.headers.get("ETag", etag)
        took = time.perf_counter() - started
        latencies.append(took * 1000)
        time.sleep(max(0.0, REFRESH - took))
    return latencies, queries


def run(n: int | None = None) -> Result:
    n = n or int(os.environ.get("BENCH_APPROVALS_N", "1000"))
    phases: dict[str, dict[str, float]] = {}
    with stack(create_account_seconds=0.2, sunnypay_activation_seconds=0.0) as s:
        tokens = s.tokens()
        api = httpx.Client(
            base_url=s.config.api_url, timeout=120, limits=httpx.Limits(max_connections=64)
        )
        file_requests(api, {"Authorization": f"Bearer {tokens['alice']}"}, OU, n)
        time.sleep(5)  # let visibility and the worker settle
        bob = {"Authorization": f"Bearer {tokens['bob']}"}
        for load in ("per_request", "queue"):
            before = cpu_seconds(s)
            started = time.monotonic()
            with ThreadPoolExecutor(APPROVERS) as pool:
                offsets = [i * REFRESH / APPROVERS for i in range(APPROVERS)]
                results = list(
                    pool.map(
                        _watch, [api] * APPROVERS, [bob] * APPROVERS, [load] * APPROVERS, offsets
                    )
                )
            elapsed = time.monotonic() - started
            after = cpu_seconds(s)
            latencies = [ms for got in results for ms in got[0]]
            phases[load] = {
                "refreshes": len(latencies),
                "worker_queries_per_second": round(sum(q for _, q in results) / elapsed, 1),
                "load_p50_ms": round(percentile(latencies, 50), 1),
                "load_p99_ms": round(percentile(latencies, 99), 1),
                "worker_cpu_seconds": round(after["worker"] - before.get("worker", 0.0), 1),
                "api_cpu_seconds": round(after["api"] - before.get("api", 0.0), 1),
                "temporal_cpu_seconds": round(after["temporal"] - before.get("temporal", 0.0), 1),
            }
    old, new = phases["per_request"], phases["queue"]
    met = new["worker_queries_per_second"] == 0 and new["load_p99_ms"] <= 200
    return Result(
        name="approvals",
        goal=f"no worker query per refresh and queue load p99 <= 200 ms, {APPROVERS} approvers",
        met_goal=met,
        summary=(
            f"approvals: {n} waiting, {APPROVERS} approvers refreshing every {REFRESH:.0f}s: "
            f"queue load p99 {new['load_p99_ms']:.0f} ms with 0 worker queries/s (before, a "
            f"query per request: p99 {old['load_p99_ms']:.0f} ms, "
            f"{old['worker_queries_per_second']:.0f} queries/s); worker CPU over "
            f"{PHASE:.0f}s {new['worker_cpu_seconds']}s vs {old['worker_cpu_seconds']}s"
        ),
        figures={
            "waiting_requests": n,
            "approvers": APPROVERS,
            "phase_seconds": PHASE,
            **{f"{load}_{k}": v for load, figures in phases.items() for k, v in figures.items()},
        },
        limits=(
            "The per-request phase is the page's old way, replayed by the benchmark for the "
            "comparison; the web page itself now loads the queue."
        ),
    )
