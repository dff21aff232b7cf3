"""The worker process: builds clients once, registers workflows and activities, drains on exit."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from vending import logging_setup
from vending.activities.organizations import OrganizationsActivities
from vending.aws import organizations_client
from vending.settings import Settings, get_settings
from vending.temporal_client import connect
from vending.worker_interceptors import AttemptReportingInterceptor
from vending.workflows.claim import AccountClaim
from vending.workflows.vending import AccountVending

log = logging.getLogger("vending.worker")


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    org = OrganizationsActivities(
        client=organizations_client(settings.aws),
        poll_interval_seconds=settings.aws.poll_interval_seconds,
        member_role_name=settings.aws.member_role_name,
    )
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=[AccountVending, AccountClaim],
        workflow_runner=SandboxedWorkflowRunner(
            # pydantic validates emails with email_validator, imported lazily: pass it through
            # so the sandbox does not re-import it for every workflow run.
            restrictions=SandboxRestrictions.default.with_passthrough_modules(
                "email_validator", "idna"
            )
        ),
        activities=[org.check_account_available, org.create_account, org.move_to_ou],
        activity_executor=executor,
        max_concurrent_activities=settings.worker.max_concurrent_activities,
        interceptors=[AttemptReportingInterceptor()],
        graceful_shutdown_timeout=timedelta(seconds=settings.worker.graceful_shutdown_seconds),
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings.temporal)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=settings.worker.max_concurrent_activities) as executor:
        worker = build_worker(client, settings, executor)
        log.info("worker polling %s on %s", settings.temporal.task_queue, settings.temporal.address)
        async with worker:
            await stop.wait()
            log.info("draining: finishing in-flight activities")


def main() -> None:
    settings = get_settings()
    logging_setup.configure(settings.log_level, "worker")
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
