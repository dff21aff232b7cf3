"""Scale of waiting: many requests waiting for approval at once (days-long approvals are the
normal case). Measures worker and Temporal memory, the first page of the list, and how long one
approval takes to take effect among them."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from bench.harness import Result, file_requests, list_latency_ms, percentile, rss_mb, stack

OU = "Bench/Waiting"


def run(n: int | None = None) -> Result:
    n = n or int(os.environ.get("BENCH_WAITING_N", "10000"))
    with stack(create_account_seconds=0.2, sunnypay_activation_seconds=0.0) as s:
        c = s.config
        tokens = s.tokens()
        api = httpx.Client(base_url=c.api_url, timeout=120, limits=httpx.Limits(max_connections=32))
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        bob = {"Authorization": f"Bearer {tokens['bob']}"}

        t0 = time.monotonic()
        ids = file_requests(api, alice, OU, n)
        fill_seconds = time.monotonic() - t0
        time.sleep(5)  # let visibility and the worker settle
        worker_rss = rss_mb(s.processes["worker"].popen.pid)  # type: ignore[union-attr]
        temporal_rss = rss_mb(s.processes["temporal"].popen.pid)  # type: ignore[union-attr]
        list_ms = list_latency_ms(api, bob)
        # One approval among n: until the API answers with the new state, and until the first
        # step runs.
        target = ids[len(ids) // 2]
        started = time.perf_counter()
        answered = api.post(f"/v1/account-requests/{target}/approve", json={}, headers=bob)
        approve_ms = (time.perf_counter() - started) * 1000
        assert answered.json()["status"] == "provisioning", answered.text
        first_step_ms = None
        while time.perf_counter() - started < 60:
            state: dict[str, Any] = api.get(f"/v1/account-requests/{target}", headers=bob).json()
            if state["steps"][0]["status"] != "pending":
                first_step_ms = (time.perf_counter() - started) * 1000
                break
            time.sleep(0.05)
    p99 = percentile(list_ms, 99)
    # The goal is stated at 10,000; a smaller run informs but does not decide it.
    met = (worker_rss <= 500 and p99 <= 200) if n >= 10_000 else None
    return Result(
        name="waiting",
        goal="worker RSS <= 500 MB and list (first page) p99 <= 200 ms with 10,000 waiting",
        met_goal=met,
        summary=(
            f"waiting: {n} requests waiting, worker RSS {worker_rss:.0f} MB (goal <= 500), "
            f"Temporal RSS {temporal_rss:.0f} MB, list p99 {p99:.0f} ms (goal <= 200), "
            f"one approval answered in {approve_ms:.0f} ms"
        ),
        figures={
            "waiting_requests": n,
            "fill_seconds": round(fill_seconds, 1),
            "fill_rate_per_second": round(n / fill_seconds, 1),
            "worker_rss_mb": worker_rss,
            "temporal_rss_mb": temporal_rss,
            "list_first_page_ms": {
                "p50": round(percentile(list_ms, 50), 1),
                "p95": round(percentile(list_ms, 95), 1),
                "p99": round(p99, 1),
            },
            "approve_answer_ms": round(approve_ms, 1),
            "approve_to_first_step_ms": round(first_step_ms, 1) if first_step_ms else None,
        },
        limits=(
            "Waiting requests cost the worker only its workflow cache (evicted ones are "
            "replayed from history when they wake); the list is a visibility query on the dev "
            "server's SQLite."
        ),
    )
