"""Step outcomes and durations as worker metrics (exported with the SDK's own, see worker.py).

Emitted through the workflow's metric meter, which Temporal skips during replay, so a step that
a worker replays after a restart is not counted twice. Metrics create no commands: adding one
never breaks a running workflow.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow


def step_outcome(step: str, result: str, started: datetime | None) -> None:
    meter = workflow.metric_meter()
    attrs = {"step": step, "result": result}
    meter.create_counter(
        "vend_step_outcomes", "Steps ended, by step and result (succeeded/failed/skipped)"
    ).add(1, attrs)
    if started is not None:
        meter.create_histogram_float(
            "vend_step_duration_seconds", "Time a step took to end, by step and result", "s"
        ).record((workflow.now() - started).total_seconds(), attrs)


def request_status(status: str) -> None:
    workflow.metric_meter().create_counter(
        "vend_request_transitions", "Requests entering a status"
    ).add(1, {"status": status})
