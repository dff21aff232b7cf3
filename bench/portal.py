"""Portal reads: what hundreds of people using the page cost, and what the API adds to Temporal.

100 reads/s for 60 s (a request's detail 40 %, the request list 20 %, the approvals queue 20 %,
the inventory 20 %) with 2 creates/s beside them, open loop from a separate process, against a
stack holding 300 requests waiting for approval and 20 managed accounts. Then, in the same run
on the same data, the same schedule with each read replaced by the one Temporal call it needs
(the state query, or the first page of the same visibility query): that run's p99 is the floor,
and the API's p99 over it is the API's own share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

import httpx

from bench.harness import Result, body, cpu_seconds, file_requests, percentile, stack
from bench.portal_load import READS

RATE, WRITES, DURATION = 100.0, 2.0, 60.0
ALONE_RATE, ALONE_SECONDS = 15.0, 12.0  # each kind of read alone, to weigh it
WAITING, ACCOUNTS = 300, 20
GOAL_P99_MS, GOAL_RATIO = 50.0, 2.0


def _load(
    s: Any,
    through: str,
    plan_path: str,
    *,
    rate: float = RATE,
    writes: float = WRITES,
    duration: float = DURATION,
    only: str | None = None,
) -> list[dict[str, Any]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.portal_load",
            "--url",
            s.config.api_url,
            "--through",
            through,
            "--rate",
            str(rate),
            "--writes",
            str(writes),
            "--duration",
            str(duration),
            "--plan",
            plan_path,
            *(["--only", only] if only else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=s.env(),
    )
    samples: list[dict[str, Any]] = json.loads(out.stdout)["samples"]
    return samples


def _pct(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q), 1) for q in (50, 95, 99)}


def _summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    by_op: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    for sample in samples:
        ok = isinstance(sample["status"], int) and sample["status"] < 400
        if not ok:
            errors.append(f"{sample['op']}: {sample['status']}")
        by_op[sample["op"]].append(sample["latency"] * 1000)
    reads = [x for op, v in by_op.items() if op != "create" for x in v]
    return {
        "reads_ms": _pct(reads) | {"count": len(reads)},
        **{f"{op}_ms": _pct(v) | {"count": len(v)} for op, v in sorted(by_op.items())},
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def _cost_per_read(s: Any, plan_path: str) -> dict[str, Any]:
    """Each kind of read alone, at a rate the machine serves (``ALONE_RATE``), through the API
    and bare: the CPU milliseconds one read costs each process, and its latency unloaded. What
    the 100/s mix needs is the sum of its reads' costs; set against two cores, it says whether
    the machine can serve the goal's load at all, and which process and call it is short on."""
    costs: dict[str, Any] = {}
    for kind in READS:
        for through in ("api", "temporal"):
            before = cpu_seconds(s)
            samples = _load(
                s, through, plan_path, rate=ALONE_RATE, writes=0, duration=ALONE_SECONDS, only=kind
            )
            after = cpu_seconds(s)
            done = max(1, len(samples))
            costs[f"{kind}/{through}"] = {
                "cpu_ms_per_read": {
                    k: round((after[k] - before.get(k, 0.0)) * 1000 / done, 2)
                    for k in after
                    if k != "benchmark"
                },
                "latency_ms": _pct([x["latency"] * 1000 for x in samples]),
            }
    return costs


def _cores_needed(costs: dict[str, Any], through: str) -> dict[str, float]:
    """CPU seconds per second, by process, that ``RATE`` reads/s of the portal's mix need."""
    total = sum(READS.values())
    need: dict[str, float] = defaultdict(float)
    for kind, weight in READS.items():
        for proc, ms in costs[f"{kind}/{through}"]["cpu_ms_per_read"].items():
            need[proc] += RATE * weight / total * ms / 1000
    return {k: round(v, 2) for k, v in sorted(need.items()) if v >= 0.005}


def _until_completed(api: httpx.Client, headers: dict[str, str], request_id: str) -> None:
    deadline = time.monotonic() + 300
    while api.get(f"/v1/account-requests/{request_id}", headers=headers).json()["status"] != (
        "completed"
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"request {request_id} did not complete")
        time.sleep(0.2)


def run() -> Result:
    with stack(create_account_seconds=0.2, sunnypay_activation_seconds=0.0) as s:
        c = s.config
        tokens = s.tokens()
        api = httpx.Client(base_url=c.api_url, timeout=120, limits=httpx.Limits(max_connections=32))
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        vended = file_requests(api, alice, "Bench/Plain", ACCOUNTS)
        waiting = file_requests(api, alice, "Bench/Waiting", WAITING)
        for rid in vended:  # the inventory holds them once their vend completes
            _until_completed(api, alice, rid)
        phases: dict[str, dict[str, Any]] = {}
        for through in ("api", "temporal"):  # each phase files creates of its own
            bodies = [body("Bench/Waiting") for _ in range(int(WRITES * DURATION) + 10)]
            plan = {"tokens": tokens, "request_ids": waiting + vended, "bodies": bodies}
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(plan, f)
            before = cpu_seconds(s)
            phases[through] = _summarize(_load(s, through, f.name))
            after = cpu_seconds(s)
            phases[through]["cpu_seconds"] = {
                k: round(after[k] - before.get(k, 0.0), 1) for k in after
            }
            if through == "temporal":  # the reads alone (creates are intake's to weigh)
                costs = _cost_per_read(s, f.name)
            os.unlink(f.name)
        through_api, floor = phases["api"], phases["temporal"]
    need_api, need_bare = _cores_needed(costs, "api"), _cores_needed(costs, "temporal")
    p99 = through_api["reads_ms"]["p99"]
    floor_p99 = floor["reads_ms"]["p99"]
    ratio = p99 / floor_p99 if floor_p99 else float("inf")
    errors = through_api["errors"]
    return Result(
        name="portal",
        goal=f"reads p99 <= {GOAL_P99_MS:.0f} ms at {RATE:.0f}/s with {WRITES:.0f} writes/s, "
        f"0 errors, and <= {GOAL_RATIO:.0f}x the bare Temporal calls' p99",
        met_goal=p99 <= GOAL_P99_MS and errors == 0 and ratio <= GOAL_RATIO,
        summary=(
            f"portal: {through_api['reads_ms']['count']} reads at {RATE:.0f}/s + {WRITES:.0f} "
            f"creates/s, p50 {through_api['reads_ms']['p50']:.0f} ms, p99 {p99:.0f} ms (goal "
            f"<= {GOAL_P99_MS:.0f}), {errors} errors; bare Temporal calls p99 {floor_p99:.0f} "
            f"ms: API {ratio:.2f}x its floor (goal <= {GOAL_RATIO:.0f}x); the reads alone "
            f"need {sum(need_api.values()):.2f} cores at {RATE:.0f}/s through the API "
            f"({_cores_text(need_api)}), {sum(need_bare.values()):.2f} bare, of 2"
        ),
        figures={
            "through_api": through_api,
            "bare_temporal": floor,
            "api_over_floor_p99": round(ratio, 2),
            "per_read_alone": costs,
            "cores_needed_at_rate": {"through_api": need_api, "bare_temporal": need_bare},
        },
        limits=(
            "A detail read is a workflow query answered by the worker; lists, the queue and "
            "the inventory are visibility queries on the dev server's SQLite, the queue and "
            "inventory decoding each item's memo. Load generator, API, worker, dev server and "
            "sandbox share two cores; cpu_seconds says what each process used in each phase "
            "(the load generator's own is not among them)."
        ),
    )


def _cores_text(need: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(need.items(), key=lambda kv: -kv[1]))
