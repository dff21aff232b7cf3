"""Rollout: one baseline template change carried to 1,000 managed accounts, in waves.

The fleet (800 accounts in Bench/SDLC, 200 in Bench/Prod, each with the fleet-probe StackSet in
two regions) is seeded straight into the sandbox, not vended one by one. The StackSet's
operations take AWS-shaped time divided by the quota benchmark's scale of 600: an operation's
own overhead of 2 minutes (0.2 s) plus 3 minutes (0.3 s) per round of instances, a round being
as many accounts as OperationPreferences lets run at once (the rollout asks for 100%, regions in
parallel). AWS runs one operation per StackSet at a time, so the plan's operations run one after
another, and the lower bound on the makespan is the sum of their durations:
    bound = sum over the plan's operations of (overhead + rounds * instance time).
Measured from the approval to the rollout's completion, as its operator sees it.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import httpx

from bench.harness import ROOT, Result, cpu_seconds, stack
from sandbox import fleet

SCALE = 600.0
OVERHEAD = 120 / SCALE  # an operation's own time, whatever its size
INSTANCE = 180 / SCALE  # one round of stack instance updates
POLL = 10 / SCALE
STACK_SET = "vend-fleet-probe"
REGIONS = ["us-east-1", "eu-west-1"]
FLEET = {"Bench/SDLC": 800, "Bench/Prod": 200}
TEMPLATE = ROOT / "bench" / "baselines" / "fleet-probe.yaml"
# The anchors' published figures (BENCHMARKS.md has their sources).
CFCT = "Customizations for Control Tower: 8-14 h for 800 accounts (50 customizations)"
AFT = "AFT fleet re-run: 150 min at 300 accounts (30 s per pipeline)"


def _rounds(accounts: int, percentage: int) -> int:
    return math.ceil(accounts / max(1, accounts * percentage // 100))


def _took(op: dict[str, Any]) -> float:
    if not (op.get("started_at") and op.get("ended_at")):
        return 0.0
    start, end = (datetime.fromisoformat(op[k]) for k in ("started_at", "ended_at"))
    return (end - start).total_seconds()


def _statuses(cfn: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in cfn.get_paginator("list_stack_instances").paginate(StackSetName=STACK_SET):
        for summary in page["Summaries"]:
            counts[summary["Status"]] = counts.get(summary["Status"], 0) + 1
    return counts


def _sandbox_times(cfn: Any) -> dict[str, tuple[datetime, datetime]]:
    """Each operation's (arrival of its call, end) as the sandbox recorded them."""
    ops = cfn.list_stack_set_operations(StackSetName=STACK_SET)["Summaries"]
    return {
        op["OperationId"]: (op["CreationTimestamp"], op["EndTimestamp"])
        for op in ops
        if op.get("EndTimestamp") and op.get("CreationTimestamp")
    }


def _split(op: dict[str, Any], times: dict[str, tuple[datetime, datetime]]) -> dict[str, Any]:
    """Where an operation's time went: the engine's before the call reached AWS, AWS's (the
    sandbox's), and the engine's after AWS had ended it (noticing, the hand-over)."""
    if op["operation_id"] not in times or not (op.get("started_at") and op.get("ended_at")):
        return {}
    arrived, ended = times[op["operation_id"]]
    started, noticed = (datetime.fromisoformat(op[k]) for k in ("started_at", "ended_at"))
    return {
        "engine_before_seconds": round((arrived - started).total_seconds(), 3),
        "sandbox_seconds": round((ended - arrived).total_seconds(), 3),
        "engine_after_seconds": round((noticed - ended).total_seconds(), 3),
    }


def _wait(api: httpx.Client, headers: dict[str, str], rollout_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        state: dict[str, Any] = api.get(f"/v1/rollouts/{rollout_id}", headers=headers).json()
        if state["status"] in ("completed", "halted", "cancelled", "invalid"):
            return state
        time.sleep(0.1)
    raise TimeoutError(f"rollout {rollout_id} did not end")


def run() -> Result:
    with stack(
        create_account_seconds=0.0,
        stack_set_seconds=OVERHEAD,
        sunnypay_activation_seconds=0.0,
        # The worker's look at a running operation, scaled like the operations: every 10 s in
        # a deployment (the default), so 1/600 of that here.
        extra_env={"VEND_AWS__POLL_INTERVAL_SECONDS": str(POLL)},
    ) as s:
        c = s.config
        sandbox = httpx.Client(base_url=c.aws_endpoint, timeout=60)
        seeded_at = time.monotonic()
        accounts = {
            ou: fleet.seed(c.aws_endpoint, ou, n, STACK_SET, REGIONS, prefix="bench", parallel=8)
            for ou, n in FLEET.items()
        }
        seed_seconds = time.monotonic() - seeded_at
        sandbox.post("/_sandbox/config", json={"stack_set_instance_seconds": INSTANCE})
        tokens = s.tokens()
        api = httpx.Client(base_url=c.api_url, timeout=300)
        carol = {"Authorization": f"Bearer {tokens['carol']}"}
        bob = {"Authorization": f"Bearer {tokens['bob']}"}
        body = {
            "baseline": "fleet-probe",
            "reason": "benchmark: a new template version",
            "template_body": TEMPLATE.read_text() + "\n# version 2\n",
            "max_concurrent_percentage": 100,
        }
        planned_at = time.monotonic()
        plan = api.post("/v1/rollouts", json=body, headers=carol)
        plan.raise_for_status()
        state = plan.json()
        plan_seconds = time.monotonic() - planned_at
        ops = [op for wave in state["waves"] for op in wave["operations"]]
        bound = sum(
            OVERHEAD + _rounds(len(op["accounts"]), 100) * INSTANCE for op in ops
        )  # regions in parallel: one round covers both
        cpu_before = cpu_seconds(s)
        t0 = time.time()
        api.post(f"/v1/rollouts/{state['rollout_id']}/approve", headers=bob).raise_for_status()
        done = _wait(api, carol, state["rollout_id"])
        # To the completion the rollout recorded (this machine's clock, as t0's): the benchmark's
        # own polling of the state would add up to a poll's interval.
        completed = next(e["at"] for e in reversed(done["events"]) if e["action"] == "complete")
        makespan = datetime.fromisoformat(completed).timestamp() - t0
        cpu_after = cpu_seconds(s)
        cfn = fleet.client(c.aws_endpoint, "cloudformation")
        instances = _statuses(cfn)
        in_sandbox = _sandbox_times(cfn)
    total = sum(len(a) for a in accounts.values())
    ratio = makespan / bound
    failed = len(done["accounts_failed"])
    current = instances.get("CURRENT", 0)
    met = (
        done["status"] == "completed"
        and ratio <= 1.1
        and failed == 0
        and current == total * len(REGIONS)
    )
    cpu = {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 1) for k in cpu_after}
    simulated = makespan * SCALE / 60
    # The engine's own time is not scaled: what it adds here in seconds it adds at AWS speed.
    engine = makespan - bound
    at_aws_speed = (bound * SCALE + engine) / (bound * SCALE)
    return Result(
        name="rollout",
        goal="makespan <= 1.1x the bound StackSet operations impose; 0 failed accounts",
        met_goal=met,
        summary=(
            f"rollout: {total} accounts x {len(REGIONS)} regions, {len(state['waves'])} waves, "
            f"{len(ops)} StackSet operations, makespan {makespan:.2f}s vs bound {bound:.2f}s = "
            f"{ratio:.2f}x (goal <= 1.1), failed {failed}, instances current {current}/"
            f"{total * len(REGIONS)}; engine's own {engine:.2f}s, so ~{at_aws_speed:.3f}x and "
            f"~{bound * SCALE / 60:.0f} min at AWS speed (CfCT: 8-14 h for 800)"
        ),
        figures={
            "accounts": total,
            "regions": REGIONS,
            "time_scale": SCALE,
            "operation_overhead_seconds": OVERHEAD,
            "instance_round_seconds": INSTANCE,
            "waves": [len(w["accounts"]) for w in state["waves"]],
            "poll_interval_seconds": round(POLL, 4),
            "operations": [
                {
                    "action": op["action"],
                    "accounts": len(op["accounts"]),
                    "bound_seconds": OVERHEAD + _rounds(len(op["accounts"]), 100) * INSTANCE,
                    "took_seconds": round(_took(op), 3),
                    **_split(op, in_sandbox),
                }
                for op in (o for w in done["waves"] for o in w["operations"])
            ],
            "lower_bound_seconds": round(bound, 2),
            "makespan_seconds": round(makespan, 2),
            "ratio_to_bound": round(ratio, 3),
            "status": done["status"],
            "failed_accounts": failed,
            "instances": instances,
            "plan_seconds": round(plan_seconds, 2),
            "seed_seconds": round(seed_seconds, 1),
            "cpu_seconds_during_rollout": cpu,
            "simulated_makespan_minutes": round(simulated, 1),
            "engine_seconds_beyond_bound": round(engine, 2),
            "ratio_at_aws_speed": round(at_aws_speed, 4),
            "anchors": [CFCT, AFT],
        },
        limits=(
            "The bound counts only AWS's time; the gap is the engine's own per wave: the "
            "activity that starts and polls the operation (every 10 simulated seconds, as "
            "deployed), the workflow task between waves, and moto's own time to update the "
            "instances' records (the survey for each next wave runs during the wave before)."
        ),
    )
