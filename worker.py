"""The worker process: builds clients once, registers workflows and activities, drains on exit."""

from __future__ import annotations

import argparse
import asyncio
import compileall
import logging
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import PollerBehaviorAutoscaling, Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.account_lifecycle import (
    AdoptionActivities,
    LifecycleActivities,
    UpdateActivities,
)
from activities.account_settings import AccountSettingsActivities
from activities.aws_clients import client as aws_client
from activities.aws_clients import client_config, organizations_client
from activities.billing import BillingActivities, sunnypay_http
from activities.budgets import BudgetActivities
from activities.claims import ClaimActivities
from activities.cleaning import AccountCleaning
from activities.control_tower import ControlTowerActivities
from activities.drift import DriftActivities, DriftTargetActivities
from activities.drift_survey import FleetSurvey
from activities.execution_roles import StackSetExecutionRoles
from activities.identity_center import IdentityCenterActivities
from activities.interceptors import AttemptReportingInterceptor
from activities.leases import LeaseActivities
from activities.member_accounts import MemberAccountAccess
from activities.member_settings import MemberSettingsActivities
from activities.notifications import NotificationActivities, SmtpConfig
from activities.organizations import OrganizationsActivities
from activities.policy_rollouts import PolicyRolloutActivities
from activities.pool_vending import PoolVending
from activities.preflight import preflight_from_settings
from activities.prerequisites import PrerequisiteGate, PrerequisiteInterceptor
from activities.rollouts import RolloutActivities
from activities.stack_sets import StackSetActivities
from activities.temporal_checks import TemporalChecks
from activities.workflow_signals import WorkflowSignals
from activities.workload_security import (
    WorkloadSecurityActivities,
    WorkloadSecurityClient,
)
from common import drift, logging_setup, worker_deployment
from common.claims import claims_task_queue
from common.drift import DriftCheckInput
from common.landing_zone import LandingZone, load_landing_zone
from common.leases import PoolConfig, PoolState, pool_id
from common.settings import Settings, get_settings
from common.stack_set_batches import BATCHER_ID
from common.temporal_client import connect
from workflows.claim_registry import ClaimRegistry
from workflows.close_quota import CLOSE_QUOTA_ID, CloseQuotaQueue, CloseQuotaState
from workflows.coordinator import (
    COORDINATOR_ID,
    Configure,
    ControlTowerCoordinator,
    CoordinatorState,
)
from workflows.drift import DriftCheck
from workflows.lease import SandboxLease
from workflows.lease_pool import LeasePool
from workflows.managed_account import ManagedAccountWorkflow
from workflows.preflight import Preflight
from workflows.rollout import BaselineRollout
from workflows.stack_set_batcher import BatcherState, StackSetBatcher
from workflows.vending import AccountVending

log = logging.getLogger("vending.worker")


WORKFLOWS = [
    AccountVending,
    ControlTowerCoordinator,
    Preflight,
    ManagedAccountWorkflow,
    CloseQuotaQueue,
    BaselineRollout,
    DriftCheck,
    StackSetBatcher,
    SandboxLease,
    LeasePool,
]


def workflow_runner() -> SandboxedWorkflowRunner:
    # pydantic validates emails with email_validator, imported lazily: pass it through so the
    # sandbox does not re-import it for every workflow run.
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna")
    )


def cache_workflow_bytecode() -> None:
    """Write the workflow modules' bytecode, even where PYTHONDONTWRITEBYTECODE says not to.

    The sandbox imports the workflow modules afresh for every workflow run it starts. Without a
    bytecode cache (a source checkout with PYTHONDONTWRITEBYTECODE set, as on this project's
    development machine) each of those imports compiles the source again: profiled at about a
    fifth of the worker's Python time under load (bench/overhead). An installed wheel already has
    its bytecode, and a read-only install is left as it is.
    """
    for path in workflows.__path__:
        compileall.compile_dir(path, quiet=2)


def activity_objects(client: Client, settings: Settings) -> list[object]:
    """The activity classes, each built once with its clients (boto3's made once, here)."""
    aws = settings.aws
    organizations = organizations_client(aws)
    org = OrganizationsActivities(
        client=organizations,
        poll_interval_seconds=aws.poll_interval_seconds,
        member_role_name=aws.member_role_name,
    )
    members = MemberAccountAccess(
        aws_client("sts", aws),
        aws.member_role_name,
        client_config(aws),
        role_wait_seconds=aws.member_role_wait_seconds,
    )
    account_api = aws_client("account", aws)
    account_settings = AccountSettingsActivities(account_api, aws.poll_interval_seconds)
    budgets = BudgetActivities(aws_client("budgets", aws), aws_client("sts", aws))
    ct = ControlTowerActivities(
        controltower=aws_client("controltower", aws),
        servicecatalog=aws_client("servicecatalog", aws),
        organizations=organizations,
        members=members,
        poll_interval_seconds=aws.poll_interval_seconds,
    )
    cloudformation = aws_client("cloudformation", aws)
    workload_security = WorkloadSecurityActivities(
        ws=WorkloadSecurityClient(settings.workload_security),
        members=members,
        management_ssm=aws_client("ssm", aws),
        settings=settings.workload_security,
    )
    billing = BillingActivities(
        http=sunnypay_http(settings.billing),
        poll_interval_seconds=settings.billing.poll_interval_seconds,
    )
    drift = DriftActivities(
        organizations=organizations,
        cloudformation=cloudformation,
        control_tower=ct,
        ws=workload_security.ws,
        ws_settings=settings.workload_security,
        members=members,
        billing=billing.http,
        budgets=budgets,
        account_settings=account_settings,
        survey=FleetSurvey(organizations, ct),
        poll_interval_seconds=aws.poll_interval_seconds,
    )
    shared = [org, account_settings, budgets, ct, workload_security, billing, drift]
    return shared + _the_others(
        client, settings, org, members, account_settings, budgets, cloudformation
    )


def _the_others(
    client: Client,
    settings: Settings,
    org: OrganizationsActivities,
    members: MemberAccountAccess,
    account_settings: AccountSettingsActivities,
    budgets: BudgetActivities,
    cloudformation: Any,
) -> list[object]:
    """The activity classes no other one is built on."""
    aws = settings.aws
    landing_zone = load_landing_zone(settings.landing_zone_file)
    execution_roles = StackSetExecutionRoles(cloudformation, members)
    return [
        LifecycleActivities(org, settings.close_quota.limit or landing_zone.close_quota or 0),
        AdoptionActivities(org, members),
        UpdateActivities(org, account_settings.account),
        IdentityCenterActivities(
            aws_client("sso-admin", aws),
            aws_client("identitystore", aws),
            aws.poll_interval_seconds,
        ),
        MemberSettingsActivities(members, account_settings),
        StackSetActivities(
            cloudformation=cloudformation,
            execution_roles=execution_roles,
            poll_interval_seconds=aws.poll_interval_seconds,
        ),
        RolloutActivities(
            cloudformation=cloudformation,
            organizations=org,
            execution_roles=execution_roles,
            poll_interval_seconds=aws.poll_interval_seconds,
        ),
        notification_activities(settings),
        TemporalChecks(client),
        ClaimActivities(client, claims_task_queue(settings.temporal.task_queue)),
        WorkflowSignals(client),
        DriftTargetActivities(client, landing_zone),
        PolicyRolloutActivities(client),
        *lease_activities(client, settings, landing_zone, org, members, account_settings, budgets),
    ]


def lease_activities(
    client: Client,
    settings: Settings,
    landing_zone: LandingZone,
    org: OrganizationsActivities,
    members: MemberAccountAccess,
    account_settings: AccountSettingsActivities,
    budgets: BudgetActivities,
) -> list[object]:
    """The leases' activities, on the clients the vends' already hold."""
    aws, leases = settings.aws, settings.leases
    return [
        LeaseActivities(
            org.client,
            [aws.member_role_name, *leases.engine_roles],
            budget_api=budgets,
            cost_explorer=aws_client("ce", aws),
            budget_action_role_arn=leases.budget_action_role_arn,
        ),
        PoolVending(client, settings, landing_zone, aws.poll_interval_seconds),
        AccountCleaning(
            members=members,
            account_settings=account_settings,
            command=leases.cleaner_command,
            engine_roles=leases.engine_roles,
            passes=leases.cleaner_passes,
            timeout_seconds=leases.cleaner_timeout_seconds,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        ),
    ]


def notification_activities(settings: Settings) -> NotificationActivities:
    note = settings.notifications
    return NotificationActivities(
        http=httpx.Client(timeout=note.timeout_seconds),
        webhook_url=note.webhook_url,
        secret=note.webhook_secret.get_secret_value().encode() if note.webhook_secret else None,
        smtp=smtp_config(settings),
    )


def activity_methods(objects: list[object]) -> list[Callable[..., Any]]:
    """Every ``@activity.defn`` method of these objects, bound: what the worker registers. A
    class's new activity is registered by being written; none is listed by hand."""
    found: dict[str, Callable[..., Any]] = {}
    for obj in objects:
        for name in dir(type(obj)):
            method = getattr(obj, name)
            definition = activity._Definition.from_callable(method) if callable(method) else None
            if definition is not None and definition.name is not None:
                if definition.name in found:
                    raise RuntimeError(f"two activities named {definition.name}")
                found[definition.name] = method
    return list(found.values())


def build_worker(
    client: Client,
    settings: Settings,
    executor: ThreadPoolExecutor,
    gate: PrerequisiteGate | None = None,
) -> Worker:
    objects = activity_objects(client, settings) + ([gate.preflight] if gate is not None else [])
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        deployment_config=deployment_config(settings),
        activities=activity_methods(objects),
        activity_executor=executor,
        max_concurrent_activities=settings.worker.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.worker.max_cached_workflows,
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.worker.sticky_queue_schedule_to_start_seconds
        ),
        **poller_behaviour(settings),
        # Outermost first: the gate answers before an attempt is counted or anything runs.
        interceptors=[
            *([PrerequisiteInterceptor(gate)] if gate is not None else []),
            AttemptReportingInterceptor(),
        ],
        graceful_shutdown_timeout=timedelta(seconds=settings.worker.graceful_shutdown_seconds),
    )


def deployment_config(settings: Settings) -> WorkerDeploymentConfig:
    """Every workflow type says whether it is pinned or auto-upgrades
    (``common/worker_deployment.py``); the worker polls as one build of the deployment."""
    return WorkerDeploymentConfig(
        version=worker_deployment.version(settings), use_worker_versioning=True
    )


def poller_behaviour(settings: Settings) -> dict[str, Any]:
    if not settings.worker.poller_autoscaling:
        return {}
    return {
        "workflow_task_poller_behavior": PollerBehaviorAutoscaling(),
        "activity_task_poller_behavior": PollerBehaviorAutoscaling(),
    }


def build_claims_worker(client: Client, settings: Settings) -> Worker:
    """The claim registry's shards on a task queue of their own (``common.claims``): requests
    wait for them inside a workflow task, so they must never wait for the same slots."""
    return Worker(
        client,
        task_queue=claims_task_queue(settings.temporal.task_queue),
        workflows=[ClaimRegistry],
        workflow_runner=workflow_runner(),
        deployment_config=deployment_config(settings),
        activities=[TemporalChecks(client).running_workflows],
        max_concurrent_activities=4,
        max_concurrent_workflow_tasks=16,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker.graceful_shutdown_seconds),
    )


def smtp_config(settings: Settings) -> SmtpConfig | None:
    note = settings.notifications
    if not note.smtp_host:
        return None
    return SmtpConfig(
        host=note.smtp_host,
        port=note.smtp_port,
        sender=note.smtp_from,
        starttls=note.smtp_starttls,
        ca_file=note.smtp_ca_file,
        username=note.smtp_username,
        password=note.smtp_password.get_secret_value() if note.smtp_password else None,
        approver_emails=tuple(note.approver_emails),
        operator_emails=tuple(note.operator_emails),
        page_url=note.page_url,
        timeout_seconds=note.timeout_seconds,
    )


async def ensure_coordinator(client: Client, settings: Settings) -> None:
    """Start the Control Tower coordinator if no worker has yet, and apply this worker's limits."""
    limits = settings.control_tower
    handle = await client.start_workflow(
        ControlTowerCoordinator.run,
        CoordinatorState(
            account_limit=limits.account_operation_limit,
            ou_operation_timeout_seconds=limits.ou_operation_timeout_seconds,
            heartbeat_timeout_seconds=settings.steps.heartbeat_timeout_seconds,
        ),
        id=COORDINATOR_ID,
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await handle.signal(
        ControlTowerCoordinator.configure,
        Configure(
            account_limit=limits.account_operation_limit,
            ou_operation_timeout_seconds=limits.ou_operation_timeout_seconds,
            heartbeat_timeout_seconds=settings.steps.heartbeat_timeout_seconds,
        ),
    )


async def ensure_stack_set_batcher(client: Client, settings: Settings) -> None:
    """Start the StackSet batcher if no worker has yet (it has no settings of its own)."""
    await client.start_workflow(
        StackSetBatcher.run,
        BatcherState(),
        id=BATCHER_ID,
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def ensure_close_quota(client: Client, settings: Settings) -> None:
    """Start the close-quota queue if no worker has yet, and apply this worker's settings."""
    quota = CloseQuotaState(
        window_seconds=settings.close_quota.window_seconds,
        refused_retry_seconds=settings.close_quota.refused_retry_seconds,
    )
    handle = await client.start_workflow(
        CloseQuotaQueue.run,
        quota,
        id=CLOSE_QUOTA_ID,
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await handle.signal(CloseQuotaQueue.configure, quota)


def drift_schedule(settings: Settings) -> Schedule:
    every = settings.drift.interval_seconds
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DriftCheck.run,
            DriftCheckInput(
                batch_size=settings.drift.batch_size,
                parallel_batches=settings.drift.parallel_batches,
                detection_busy_wait_seconds=settings.drift.detection_busy_wait_seconds,
            ),
            id=f"{drift.ID_PREFIX}scheduled",
            task_queue=settings.temporal.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every or 86400))]
        ),
        # A check still running when the next is due: the next is skipped, not stacked.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            paused=every == 0, note="VEND_DRIFT__INTERVAL_SECONDS=0" if every == 0 else ""
        ),
    )


async def ensure_drift_schedule(client: Client, settings: Settings) -> None:
    """Create the drift check's Schedule, or bring it to this worker's settings."""
    schedule = drift_schedule(settings)
    try:
        await client.create_schedule(drift.SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(drift.SCHEDULE_ID).update(
            lambda _: ScheduleUpdate(schedule=schedule)
        )


async def ensure_pools(client: Client, settings: Settings) -> None:
    """Start each lease pool's keeper if no worker has yet, and give it the landing zone's
    declaration as it stands now."""
    landing_zone = load_landing_zone(settings.landing_zone_file)
    for spec in landing_zone.pools:
        assert landing_zone.email_template is not None  # the landing zone requires one
        config = PoolConfig(
            spec=spec,
            email_template=landing_zone.email_template,
            heartbeat_seconds=settings.steps.heartbeat_timeout_seconds,
        )
        handle = await client.start_workflow(
            LeasePool.run,
            PoolState(config=config),
            id=pool_id(spec.organizational_unit),
            task_queue=settings.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await handle.signal(LeasePool.configure, config)


async def ensure_long_lived(client: Client, settings: Settings) -> None:
    await ensure_coordinator(client, settings)
    await ensure_pools(client, settings)
    await ensure_close_quota(client, settings)
    await ensure_stack_set_batcher(client, settings)
    await ensure_drift_schedule(client, settings)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves Prometheus metrics: the SDK's (task latencies, slots,
    poll failures) and the workflows' own vend_step_* and vend_request_transitions."""
    address = settings.worker.metrics_bind_address
    if not address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address, counters_total_suffix=True, durations_as_seconds=True
            )
        )
    )


async def run_worker(settings: Settings) -> None:
    cache_workflow_bytecode()
    client = await connect(settings.temporal, settings.codec, runtime=metrics_runtime(settings))
    log.info("worker deployment version %s", worker_deployment.version_name(settings))
    # New workflows start on the current build: promote first where the server allows it (then
    # the long-lived workflows are started before the worker polls, as before versioning); a
    # new build beside a current one is promoted once it polls.
    promote = settings.worker.promote
    if promote and await worker_deployment.promote_early(client, settings):
        promote = False
    if not promote:
        await ensure_long_lived(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    preflight = preflight_from_settings(
        settings, load_landing_zone(settings.landing_zone_file), client
    )
    gate = PrerequisiteGate(preflight, settings.worker.prerequisite_recheck_seconds)
    with ThreadPoolExecutor(max_workers=settings.worker.max_concurrent_activities) as executor:
        worker = build_worker(client, settings, executor, gate)
        claims_worker = build_claims_worker(client, settings)
        log.info("worker polling %s on %s", settings.temporal.task_queue, settings.temporal.address)
        async with worker, claims_worker:
            if promote:
                await worker_deployment.promote(client, settings)
                await ensure_long_lived(client, settings)
            checking = asyncio.create_task(gate.check_all())  # while the worker already polls
            await stop.wait()
            checking.cancel()
            log.info("draining: finishing in-flight activities")


def main(argv: list[str] | None = None) -> None:
    """``python worker.py`` and ``vend worker``: settings come from VEND_* variables, not flags,
    so every process of a deployment reads the same ones (docs/configuration.md)."""
    argparse.ArgumentParser(
        prog="worker.py",
        description="Run an account vending worker: polls the task queue, runs the workflows and "
        "activities, drains in-flight activities on SIGTERM. Configured by VEND_* variables "
        "(docs/configuration.md); any number of workers may share a namespace.",
    ).parse_args(argv)
    settings = get_settings()
    logging_setup.configure(
        settings.log_level, "worker", settings.log_format, settings.third_party_log_level
    )
    asyncio.run(run_worker(settings))
    exit_after_drain()


def exit_after_drain() -> None:
    """Leave without finalizing the interpreter, once the worker has drained.

    The SDK's native threads (its core's runtime, the metrics server) outlive ``asyncio.run``;
    one calling into Python while the interpreter finalizes aborts the process ("Fatal Python
    error: PyGILState_Release", exit -6), so a clean drain ended as a crash now and then. All
    work is done and every log line flushed by now: nothing is lost by skipping finalization.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
