"""Leases and pools as worker metrics (with the SDK's, see worker.py): time to grant, cleaning
time and outcome, and each pool's accounts per state.

Through the workflow's metric meter, which Temporal skips during replay: a lease a worker
replays after a restart is not counted twice. Metrics create no commands.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from common.leases import PoolAccountState, PoolState


def granted(template: str, asked_at: datetime) -> None:
    workflow.metric_meter().create_histogram_float(
        "vend_lease_grant_seconds",
        "From a lease's start (after any approval) to access in place, by template",
        "s",
    ).record((workflow.now() - asked_at).total_seconds(), {"template": template})


def lease_status(template: str, status: str) -> None:
    workflow.metric_meter().create_counter(
        "vend_lease_transitions", "Leases entering a status, by template"
    ).add(1, {"template": template, "status": status})


def cleaned(pool: str, outcome: str, started: datetime) -> None:
    meter = workflow.metric_meter()
    attrs = {"pool": pool, "outcome": outcome}
    meter.create_counter(
        "vend_pool_cleanings", "Cleanings ended, by pool and outcome (clean/quarantined)"
    ).add(1, attrs)
    meter.create_histogram_float(
        "vend_pool_cleaning_seconds", "Time a cleaning took, by pool and outcome", "s"
    ).record((workflow.now() - started).total_seconds(), attrs)


def pool_accounts(pool: str, state: PoolState) -> None:
    gauge = workflow.metric_meter().create_gauge(
        "vend_pool_accounts", "A pool's accounts per state (provisioning: vends in flight)"
    )
    for kind in PoolAccountState:
        count = (
            len(state.provisioning) if kind == PoolAccountState.provisioning else state.count(kind)
        )
        gauge.set(count, {"pool": pool, "state": kind.value})
