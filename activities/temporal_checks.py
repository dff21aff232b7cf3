"""Questions about other workflows, asked of Temporal itself (workflow code cannot)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from common import search_attributes
from common.preflight import CheckResult, CheckStatus
from common.settings import TemporalSettings


class WorkflowIds(BaseModel):
    ids: list[str]


@dataclass
class TemporalChecks:
    client: Client

    @activity.defn(no_thread_cancel_exception=True)
    async def running_workflows(self, inp: WorkflowIds) -> WorkflowIds:
        """The subset of ``ids`` whose latest run is still running."""
        return WorkflowIds(ids=[i for i in inp.ids if await is_running(self.client, i)])


async def is_running(client: Client, workflow_id: str) -> bool:
    """Whether the workflow's latest run is still running (gone past retention: long ended)."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return desc.status == WorkflowExecutionStatus.RUNNING


def unreachable(settings: TemporalSettings, why: str, seconds: float = 0.0) -> CheckResult:
    """The Temporal check's answer when the cluster cannot be reached at all."""
    return CheckResult(
        name="temporal.namespace",
        title=NAMESPACE_TITLE,
        status=CheckStatus.failed,
        found=f"unreachable: {settings.address}: {why}",
        fix="check VEND_TEMPORAL__ADDRESS, its TLS settings and the API key",
        seconds=seconds,
    )


NAMESPACE_TITLE = "Temporal's namespace is ready (search attributes registered)"


async def temporal_readiness(client: Client, settings: TemporalSettings) -> list[CheckResult]:
    """``vend doctor``'s Temporal checks: the namespace, and every search attribute the engine
    filters on registered with its type (without them, a request's first status change fails)."""
    started = time.monotonic()

    def result(status: CheckStatus, found: str, fix: str | None = None) -> CheckResult:
        return CheckResult(
            name="temporal.namespace",
            title=NAMESPACE_TITLE,
            status=status,
            found=found,
            fix=fix,
            seconds=round(time.monotonic() - started, 3),
        )

    namespace = settings.namespace
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=timedelta(seconds=10)
        )
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=10)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return [
                result(
                    CheckStatus.failed,
                    f"namespace {namespace!r} does not exist at {settings.address}",
                    f"temporal operator namespace create --namespace {namespace}",
                )
            ]
        why = f"{err.status.name if err.status else 'error'}: {err.message}"
        return [unreachable(settings, why, round(time.monotonic() - started, 3))]
    registered = dict(listed.custom_attributes)
    wrong = []
    for key in search_attributes.ALL:
        kind = registered.get(key.name)
        if kind != IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD:
            wrong.append(key.name)
    if wrong:
        return [
            result(
                CheckStatus.failed,
                f"not registered as Keyword: {', '.join(wrong)}",
                "; ".join(
                    f"temporal operator search-attribute create --namespace {namespace} "
                    f"--name {name} --type Keyword"
                    for name in wrong
                ),
            )
        ]
    found = f"namespace {namespace}: {len(search_attributes.ALL)} search attributes registered"
    return [result(CheckStatus.ok, found)]
