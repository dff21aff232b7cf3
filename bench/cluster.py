"""Cluster: what a self-hosted Temporal cluster needs per request in flight, for sizing one.

The `waiting` benchmark's shape (requests waiting for approval, each an open workflow, as every
managed account's workflow is) on a cluster of real processes (sandbox/cluster: PostgreSQL with
SQL visibility, two frontends, two history nodes, matching, the worker service, mTLS), with two
engine workers and two APIs on it. Reports each Temporal role's memory, the database's size,
the list's latency from SQL visibility and one approval's, and what each grows by per 1,000
open workflows (measured at two sizes, so the fixed cost of an empty cluster is not counted).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import LANDING_ZONE, Result, file_requests, list_latency_ms, percentile, rss_mb
from sandbox.cluster.postgres import bin_dir
from sandbox.cluster.stack import ClusterStack
from sandbox.cluster.temporal import TemporalCluster, running_cluster
from sandbox.stack import StackConfig

OU = "Bench/Waiting"


def _roles_rss(cluster: TemporalCluster, stack: ClusterStack) -> dict[str, float]:
    found: dict[str, float] = {}
    for node in cluster.nodes:
        if node.process is not None and node.process.popen is not None:
            found[f"temporal-{node.name}"] = rss_mb(node.process.popen.pid)
    for name in ("worker", "worker-2", "api", "api-2"):
        popen = stack.processes[name].popen
        if popen is not None:
            found[name] = rss_mb(popen.pid)
    return found


def _database_mb(cluster: TemporalCluster) -> dict[str, float]:
    assert cluster.postgres is not None
    psql = bin_dir()
    assert psql is not None
    out = subprocess.run(
        [
            str(psql / "psql"),
            "-h",
            cluster.postgres.host,
            "-p",
            str(cluster.postgres.port),
            "-U",
            cluster.postgres.user,
            "-d",
            "postgres",
            "-At",
            "-c",
            "select datname, pg_database_size(datname) from pg_database "
            "where datname like 'temporal%'",
        ],
        env={**os.environ, "PGPASSWORD": cluster.postgres.password},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sizes = dict(line.split("|") for line in out.strip().splitlines())
    return {name: round(int(size) / 2**20, 1) for name, size in sizes.items()}


def _sample(
    cluster: TemporalCluster, stack: ClusterStack, api: httpx.Client, bob: dict[str, str]
) -> dict[str, Any]:
    list_ms = list_latency_ms(api, bob)
    return {
        "rss_mb": _roles_rss(cluster, stack),
        "database_mb": _database_mb(cluster),
        "list_first_page_ms": {
            "p50": round(percentile(list_ms, 50), 1),
            "p99": round(percentile(list_ms, 99), 1),
        },
    }


def run(n: int | None = None) -> Result:
    n = n or int(os.environ.get("BENCH_CLUSTER_N", "2000"))
    first = n // 4
    work = Path(tempfile.mkdtemp(prefix="vend-bench-cluster-"))
    with running_cluster(work / "cluster", work / "logs") as cluster:
        config = StackConfig.on_free_ports(
            work / "stack",
            landing_zone=LANDING_ZONE,
            log_dir=work / "logs",
            create_account_seconds=0.2,
            sunnypay_activation_seconds=0.0,
            keep_sandbox_state=False,
            extra_env={
                "VEND_LOG_LEVEL": "WARNING",
                "VEND_LIMITS__REQUESTS_PER_MINUTE": "0",
                "VEND_LIMITS__CREATES_PER_MINUTE": "0",
                "VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "0",
            },
        )
        stack = ClusterStack(config, cluster)
        try:
            stack.start_all()
            tokens = stack.tokens()
            limits = httpx.Limits(max_connections=32)
            api = httpx.Client(base_url=config.api_url, timeout=120, limits=limits)
            alice = {"Authorization": f"Bearer {tokens['alice']}"}
            bob = {"Authorization": f"Bearer {tokens['bob']}"}
            t0 = time.monotonic()
            file_requests(api, alice, OU, first)
            time.sleep(5)  # visibility and the worker settle
            at_first = _sample(cluster, stack, api, bob)
            ids = file_requests(api, alice, OU, n - first)
            fill_seconds = time.monotonic() - t0
            time.sleep(5)
            at_n = _sample(cluster, stack, api, bob)
            target = ids[len(ids) // 2]
            started = time.perf_counter()
            answered = api.post(f"/v1/account-requests/{target}/approve", json={}, headers=bob)
            approve_ms = (time.perf_counter() - started) * 1000
            assert answered.json()["status"] == "provisioning", answered.text
        finally:
            stack.stop_all()
    per_thousand = {
        role: round((at_n["rss_mb"][role] - at_first["rss_mb"][role]) * 1000 / (n - first), 1)
        for role in at_n["rss_mb"]
    }
    db_per_thousand = {
        db: round(
            (at_n["database_mb"][db] - at_first["database_mb"].get(db, 0)) * 1000 / (n - first), 1
        )
        for db in at_n["database_mb"]
    }
    p99 = at_n["list_first_page_ms"]["p99"]
    history = sum(v for k, v in at_n["rss_mb"].items() if k.startswith("temporal-history"))
    return Result(
        name="cluster",
        goal="sizing (no goal): list p99 from SQL visibility <= 200 ms, as on the dev server",
        met_goal=p99 <= 200,
        summary=(
            f"cluster: {n} open workflows on 2 frontends, 2 history, 1 matching, 1 worker "
            f"service (PostgreSQL, mTLS): history nodes {history:.0f} MB together, list p99 "
            f"{p99:.0f} ms, one approval answered in {approve_ms:.0f} ms, "
            f"{n / fill_seconds:.1f} creates/s"
        ),
        figures={
            "open_workflows": n,
            "fill_seconds": round(fill_seconds, 1),
            "creates_per_second": round(n / fill_seconds, 1),
            f"at_{first}": at_first,
            f"at_{n}": at_n,
            "rss_mb_per_1000_open_workflows": per_thousand,
            "database_mb_per_1000_open_workflows": db_per_thousand,
            "approve_answer_ms": round(approve_ms, 1),
            "cluster_start_seconds": {k: round(v, 1) for k, v in cluster.timings.items()},
        },
        limits=(
            "PostgreSQL's memory is its shared buffers and a process per connection, set by its "
            "own configuration rather than by the workflows: its size on disk is what grows. "
            "Every process shares this machine's two cores, the database included; a "
            "deployment spreads them. Open workflows cost history memory (its caches) and "
            "database rows; closed ones only rows until retention removes them."
        ),
    )
