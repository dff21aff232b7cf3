"""What every benchmark shares: an embedded stack shaped for it, request bodies, the machine
description, and a results file per benchmark."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.stack import (
    DEFAULT_TEMPORAL_LEVERS,
    TEMPORAL_LEVERS,
    EmbeddedStack,
    StackConfig,
    running,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LANDING_ZONE = ROOT / "bench" / "landing_zone.yaml"


def filesystem_of(path: str) -> str:
    """The filesystem type a path lives on (``ext4``, ``tmpfs``…), from /proc/mounts."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and path.startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Where the stacks keep their data, the Temporal dev server's SQLite file included: its
        # commits wait on this filesystem (TMPDIR chooses it; tmpfs shows the engine without the
        # disk's fsyncs).
        "data_filesystem": filesystem_of(os.path.realpath(tempfile.gettempdir())),
    }


def temporal_levers() -> tuple[str, ...]:
    """``BENCH_TEMPORAL_LEVERS``: "default" (what `make run` uses), "all", "none", or a comma list
    of sandbox.stack.TEMPORAL_LEVERS names, to weigh one change at a time."""
    chosen = os.environ.get("BENCH_TEMPORAL_LEVERS", "default").strip()
    if chosen == "default":
        return DEFAULT_TEMPORAL_LEVERS
    if chosen == "all":
        return tuple(TEMPORAL_LEVERS)
    if chosen in ("", "none"):
        return ()
    return tuple(lever.strip() for lever in chosen.split(",") if lever.strip())


def worker_levers() -> dict[str, str]:
    """Worker settings chosen for a run (``VEND_WORKER__*`` in the benchmark's environment:
    poller autoscaling, the sticky queue's timeout, the cache), passed to the stack's worker."""
    return {k: v for k, v in os.environ.items() if k.startswith("VEND_WORKER__")}


def levers_in_force() -> dict[str, Any]:
    """What the figure was measured with, recorded beside it."""
    return {
        "temporal_dev_server": list(temporal_levers()),
        "claims": "claim registry: 16 shard workflows, claims taken by update in a local activity",
        "state_in_memo": True,
        "worker": worker_levers(),
    }


@dataclass
class Result:
    name: str
    summary: str
    met_goal: bool | None  # None: this run cannot decide the goal
    figures: dict[str, Any]
    goal: str
    limits: str = ""
    machine: dict[str, Any] = field(default_factory=machine)
    levers: dict[str, Any] = field(default_factory=lambda: levers_in_force())
    finished_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(self.__dict__, indent=2, default=str) + "\n")
        return path


@contextmanager
def stack(**overrides: Any) -> Iterator[EmbeddedStack]:
    """A fresh embedded stack on free ports, with the benchmark's landing zone and latencies."""
    data = Path(tempfile.mkdtemp(prefix="vend-bench-"))
    extra_env = {
        "VEND_LOG_LEVEL": "WARNING",
        "VEND_AWS__POLL_INTERVAL_SECONDS": "0.2",
        "VEND_BILLING__POLL_INTERVAL_SECONDS": "0.2",
        "VEND_WORKER__MAX_CONCURRENT_ACTIVITIES": "100",
        # The benchmarks load the engine from a few callers; the per-caller limits would
        # measure themselves instead.
        "VEND_LIMITS__REQUESTS_PER_MINUTE": "0",
        "VEND_LIMITS__CREATES_PER_MINUTE": "0",
        "VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "0",
        **worker_levers(),
        **overrides.pop("extra_env", {}),
    }
    config = StackConfig.on_free_ports(
        data,
        landing_zone=overrides.pop("landing_zone", LANDING_ZONE),
        log_dir=data / "logs",
        extra_env=extra_env,
        temporal_levers=temporal_levers(),
        **overrides,
    )
    with running(config) as s:
        yield s


def file_requests(api: httpx.Client, headers: dict[str, str], ou: str, n: int) -> list[str]:
    """File ``n`` requests for ``ou`` from 24 threads (a refused one is asked again, up to five
    times); their ids in filing order."""

    def create(_: int) -> str:
        for _attempt in range(5):
            resp = api.post("/v1/account-requests", json=body(ou), headers=headers)
            if resp.status_code == 201:
                return str(resp.json()["id"])
            time.sleep(1)
        resp.raise_for_status()
        return ""

    with ThreadPoolExecutor(24) as pool:
        return list(pool.map(create, range(n)))


def body(ou: str, **overrides: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:10]
    out: dict[str, Any] = {
        "account_name": f"b-{suffix}",
        "account_email": f"aws+b-{suffix}@example.com",
        "organizational_unit": ou,
        "environment": "dev",
        "owner_email": "owner@example.com",
        "cost_center": "CC-BENCH",
        "justification": "benchmark",
        "workload_security": {"enabled": False},
        "billing": {"customer_id": "cust-001"},
    }
    out.update(overrides)
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def _pids(pid: int) -> list[int]:
    try:
        return [
            pid,
            *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()),
        ]
    except OSError:
        return [pid]


def cpu_seconds(s: EmbeddedStack) -> dict[str, float]:
    """CPU time (user + system) each stack process and this benchmark process have used so far.

    Taken before and after a phase, the difference says where a phase's CPU went: on a machine
    where everything shares two cores that, more than wall time, is what one side costs.
    """
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, proc in s.processes.items():
        if proc.popen is None:
            continue
        total = 0
        for pid in _pids(proc.popen.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        out[name] = total / tick
    own = os.times()
    out["benchmark"] = own.user + own.system  # this process: the load, or the plain script
    return out


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 1) for k in after}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def wait_all(
    client: httpx.Client, token: str, ids: list[str], statuses: set[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until every request is in one of ``statuses``; returns each final state.

    Watches through the list endpoint (one visibility query per status and poll) and reads each
    request's full state once, when it is done. Polling every request's state instead would make
    the measurement itself a load: each read is a workflow query answered by the worker, a
    hundred of them every poll, competing with the workflows being measured.
    """
    headers = {"Authorization": f"Bearer {token}"}
    pending = set(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for status in sorted(statuses):
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"status": status, "limit": 100}
                if cursor:
                    params["cursor"] = cursor
                page = client.get("/v1/account-requests", params=params, headers=headers).json()
                pending.difference_update(item["id"] for item in page.get("items", []))
                cursor = page.get("next_cursor")
                if not cursor or not pending:
                    break
        if pending:
            time.sleep(0.5)
    done: dict[str, dict[str, Any]] = {}
    for rid in ids:
        if rid in pending:
            continue
        state = client.get(f"/v1/account-requests/{rid}", headers=headers).json()
        if state.get("status") in statuses:
            done[rid] = state
    return done


def list_latency_ms(api: httpx.Client, headers: dict[str, str], samples: int = 100) -> list[float]:
    """The first page of the waiting list, read ``samples`` times one after another: what the
    Approvals page costs an approver each time it loads (each read must return a full page)."""
    found = []
    for _ in range(samples):
        started = time.perf_counter()
        resp = api.get("/v1/account-requests?status=pending_approval&limit=20", headers=headers)
        found.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200 and len(resp.json()["items"]) == 20, resp.text
    return found


def aws_calls(endpoint: str) -> dict[str, int]:
    """The sandbox's count of every AWS call it has answered, by ``service:Operation``."""
    state = httpx.get(f"{endpoint}/_sandbox/state", timeout=30).json()
    calls: dict[str, int] = state["calls"]
    return calls


def calls_since(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    return {k: float(v - before.get(k, 0)) for k, v in after.items()}


def per_item(counts: dict[str, float], n: int, unit: float = 1.0) -> dict[str, float]:
    """Counts (or seconds, with ``unit`` 1000 for milliseconds) per request, account or call."""
    return {k: round(v * unit / n, 2) for k, v in sorted(counts.items()) if v}
