"""The doctor on a worker, as a specification: the API holds no AWS credentials, so it asks a
workflow, which runs the checks once on a worker (no retry: a second run would only say the
same later) and answers with the report, failures and all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from common.preflight import CheckResult, CheckStatus, PreflightReport
from tests.workflows.harness import QUEUE, worker
from workflows.preflight import Preflight


def _checks(answers: list[str]) -> object:
    @activity.defn(name="run_preflight")
    async def run_preflight() -> PreflightReport:
        broken = answers[0] == "broken"
        answers.append("asked")
        if broken:
            raise RuntimeError("the worker could not run the checks")
        check = CheckResult(
            name="organizations.quarantine_exemption",
            title="The suspended OU's SCPs let the decommission finish after quarantine",
            status=CheckStatus.failed,
            found="explicit deny in a service control policy",
            fix="aws organizations update-policy ...",
        )
        return PreflightReport(checked_at=datetime.now(UTC), checks=[check])

    return run_preflight


async def test_the_report_comes_back_whole_failures_and_fixes_included(
    time_skipping: WorkflowEnvironment,
) -> None:
    answers: list[str] = ["ok"]
    async with worker(time_skipping, [Preflight], [_checks(answers)]):
        report: PreflightReport = await time_skipping.client.execute_workflow(
            Preflight.run, id=f"preflight-{uuid.uuid4()}", task_queue=QUEUE
        )
    assert not report.ok and report.failed()[0].fix
    assert answers == ["ok", "asked"]


async def test_a_worker_that_cannot_run_the_checks_fails_the_ask_once(
    time_skipping: WorkflowEnvironment,
) -> None:
    answers: list[str] = ["broken"]
    async with worker(time_skipping, [Preflight], [_checks(answers)]):
        with pytest.raises(WorkflowFailureError):
            await time_skipping.client.execute_workflow(
                Preflight.run, id=f"preflight-{uuid.uuid4()}", task_queue=QUEUE
            )
    assert answers == ["broken", "asked"]  # not retried
