"""Worker Versioning: which build of the workflow code runs which workflow.

Requests, rollouts, drift checks and the preflight are **pinned** to the build that started
them: they finish on it, however the code changes meanwhile, so a change to them needs no
``workflow.patched`` gate. The long-lived workflows (the account's own, the coordinators, the
claim registry) **auto-upgrade** to the deployment's current build at their next task; they keep
short runs (continue-as-new), and ``tests/test_replay.py`` replays their recorded histories on
every later build, so a change that could not take over a running one fails in CI.

A build is named by a digest of the workflow code (``workflows/`` and the ``common/`` models
they carry), so the same code is the same build on every machine and any change to it is a new
build. docs/upgrades.md says how an operator rolls a new build out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    UpdateWorkflowExecutionOptionsRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode

from common.settings import Settings

log = logging.getLogger("vending.deployment")

ROOT = Path(__file__).resolve().parent.parent
CODE = ("workflows", "common")  # what a workflow task runs: the workflows and the models they carry
IDENTITY = "account-vending"


def code_digest(root: Path = ROOT) -> str:
    """A digest of the workflow code's sources (not their bytecode: the same on every machine)."""
    digest = hashlib.sha256()
    for folder in CODE:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_id(settings: Settings) -> str:
    return settings.worker.build_id or code_digest()


def version(settings: Settings) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(settings.worker.deployment_name, build_id(settings))


def version_name(settings: Settings) -> str:
    """As visibility shows it (``TemporalWorkerDeploymentVersion``)."""
    v = version(settings)
    return f"{v.deployment_name}:{v.build_id}"


async def promote(client: Client, settings: Settings, *, within: float = 60.0) -> bool:
    """Make this build the deployment's current version, so new workflows start on it; True if
    it is current afterwards. A build that was current and has been replaced is not promoted
    again: an old worker restarting during a rollout must not take new requests back.

    Called once this worker polls: the server refuses a version that does not yet poll every
    task queue the current one serves (they would fall to unversioned workers, of which there
    are none), so a refusal of that kind is asked again until ``within`` seconds have passed."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await _promote(client, settings)
        except RPCError as err:
            missing = "missing active task queues" in err.message
            if not (missing or transient(err)) or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"could not make build {build_id(settings)} current: {err.message}"
                ) from err
        await asyncio.sleep(0.5)


# What a cluster answers while it moves history shards between nodes (one joined, one died:
# "Failed to lock shard", masked as "something went wrong, please retry"), restarts a frontend
# or sheds load. Asked again, it succeeds; the dev server, one process, never says it.
_TRANSIENT = {
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
}


def transient(err: RPCError) -> bool:
    return err.status in _TRANSIENT


async def promote_early(client: Client, settings: Settings) -> bool:
    """Promote before polling where the server allows it (the first build ever, or this build
    again): then nothing starts anywhere else meanwhile. False where it must wait until this
    worker polls (a new build beside a current one: ``promote``)."""
    deadline = asyncio.get_running_loop().time() + 60.0
    while True:
        try:
            return await _promote(client, settings)
        except RPCError as err:
            if "missing active task queues" in err.message:
                return False
            if not transient(err) or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.5)


async def _promote(client: Client, settings: Settings) -> bool:
    name, build = settings.worker.deployment_name, build_id(settings)
    summary = await _summary(client, settings)
    if summary is not None and summary.get("current"):
        return True
    if summary is not None and summary.get("replaced"):
        log.warning(
            "build %s of %s was current and has been replaced: not promoting it again "
            "(temporal worker deployment set-current-version does it by hand)",
            build,
            name,
        )
        return False
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=name,
        build_id=build,
        identity=IDENTITY,
        allow_no_pollers=True,  # before this worker polls: nothing starts on the old one meanwhile
    )
    try:
        await client.workflow_service.set_worker_deployment_current_version(request)
    except RPCError:  # another worker of the same build may have just done it
        summary = await _summary(client, settings)
        if summary is None or not summary.get("current"):
            raise
    log.info("build %s is the current version of deployment %s", build, name)
    return True


async def _summary(client: Client, settings: Settings) -> dict[str, bool] | None:
    """Whether this build is current, and whether it was current once and is no longer."""
    request = DescribeWorkerDeploymentRequest(
        namespace=client.namespace, deployment_name=settings.worker.deployment_name
    )
    try:
        described = await client.workflow_service.describe_worker_deployment(request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = described.worker_deployment_info
    build = build_id(settings)
    current = info.routing_config.current_deployment_version.build_id == build
    for summary in info.version_summaries:
        if summary.deployment_version.build_id == build:
            replaced = summary.HasField("last_deactivation_time") and not current
            return {"current": current, "replaced": replaced}
    return {"current": current, "replaced": False}


@dataclass(frozen=True)
class Stranded:
    """A pinned workflow whose build no worker of this checkout runs."""

    workflow_id: str
    workflow_type: str
    version: str
    started: datetime | None


async def stranded(client: Client, settings: Settings, limit: int = 1000) -> list[Stranded]:
    """Running workflows pinned to another build of this deployment: they move only on a worker
    of that build (or when moved to this one by ``vend admin move-to-current``)."""
    name = settings.worker.deployment_name
    query = (
        "ExecutionStatus = 'Running' AND TemporalWorkflowVersioningBehavior = 'Pinned' "
        f"AND TemporalWorkerDeployment = '{name}' "
        f"AND TemporalWorkerDeploymentVersion != '{version_name(settings)}'"
    )
    found: list[Stranded] = []
    async for wf in client.list_workflows(query, limit=limit):
        pinned = wf.search_attributes.get("TemporalWorkerDeploymentVersion") or ["?"]
        found.append(Stranded(wf.id, wf.workflow_type, str(pinned[0]), wf.start_time))
    return found


async def move_to_current(client: Client, settings: Settings, workflow_id: str) -> None:
    """Pin a workflow to this build: it replays its history on this code. If this code cannot
    replay it, its workflow task fails (shown in the UI) and the workflow waits, unharmed,
    until it is moved back (``--to`` the build it came from) and that build's worker runs."""
    await pin(client, workflow_id, version(settings))


async def pin(client: Client, workflow_id: str, to: WorkerDeploymentVersion) -> None:
    options = WorkflowExecutionOptions(
        versioning_override=VersioningOverride(
            pinned=VersioningOverride.PinnedOverride(
                behavior=VersioningOverride.PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
                version=VersionProto(deployment_name=to.deployment_name, build_id=to.build_id),
            )
        )
    )
    request = UpdateWorkflowExecutionOptionsRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        workflow_execution_options=options,
        update_mask=FieldMask(paths=["versioning_override"]),
        identity=IDENTITY,
    )
    await client.workflow_service.update_workflow_execution_options(request)
