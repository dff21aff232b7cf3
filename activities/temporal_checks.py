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
    registered = {name: int(kind) for name, kind in listed.custom_attributes.items()}
    store = await visibility_store(client, namespace)
    return [result(*search_attribute_verdict(registered, store, namespace))]


# SQL visibility (PostgreSQL, MySQL, SQLite: the dev server too) pre-allocates columns for custom
# search attributes, so each namespace holds at most this many of each type (the server's
# defaults; ``persistence.visibilityStore``'s ``persistenceCustomSearchAttributes`` raises them).
SQL_CUSTOM_ATTRIBUTE_LIMITS: dict[int, int] = {
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: 3,
    IndexedValueType.INDEXED_VALUE_TYPE_INT: 3,
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: 3,
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: 3,
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: 10,
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: 3,
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: 3,
}


async def visibility_store(client: Client, namespace: str) -> str:
    """``sql`` or ``elasticsearch``, told by the one list query they answer differently: SQL
    visibility refuses ORDER BY (the engine's own queries never use it), Elasticsearch sorts.
    ``unknown`` when the probe itself fails for another reason."""
    probe = "WorkflowType = 'vend-doctor-probe' ORDER BY StartTime DESC"
    try:
        async for _ in client.list_workflows(probe, page_size=1, rpc_timeout=timedelta(seconds=10)):
            break
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT and "order by" in err.message.lower():
            return "sql"
        return "unknown"
    return "elasticsearch"


def _type_name(kind: int) -> str:
    return IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_")  # type: ignore[arg-type,unused-ignore]


def search_attribute_verdict(
    registered: dict[str, int], store: str, namespace: str
) -> tuple[CheckStatus, str, str | None]:
    """Whether every attribute the engine filters on is registered as Keyword, and, on SQL
    visibility, whether they fit its per-type columns beside whatever else the namespace holds.

    A missing attribute is created; one of another type must be removed first (a name keeps
    its type), which drops what was indexed under it; the engine's writes of it fail until
    then. On SQL visibility a create past the limit is refused, so the doctor counts first."""
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    missing = [k.name for k in search_attributes.ALL if k.name not in registered]
    wrong = [
        f"{k.name} ({_type_name(registered[k.name])})"
        for k in search_attributes.ALL
        if k.name in registered and registered[k.name] != keyword
    ]
    keywords_used = sum(1 for kind in registered.values() if kind == keyword)
    limit = SQL_CUSTOM_ATTRIBUTE_LIMITS[keyword]
    fixes = [
        f"temporal operator search-attribute create --namespace {namespace} --name {name} "
        "--type Keyword"
        for name in missing
    ]
    fixes += [
        f"temporal operator search-attribute remove --namespace {namespace} --name "
        f"{entry.split(' ')[0]} (drops its indexed values), then create it as Keyword"
        for entry in wrong
    ]
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if wrong:
        problems.append(f"not Keyword: {', '.join(wrong)}")
    if store == "sql" and keywords_used + len(missing) > limit:
        problems.append(
            f"SQL visibility holds {limit} custom Keyword attributes per namespace: "
            f"{keywords_used} are taken and the engine needs {len(missing)} more"
        )
        fixes.append(
            "remove unused Keyword attributes from the namespace, raise the server's "
            "persistenceCustomSearchAttributes, or use a namespace of the engine's own"
        )
    if problems:
        return CheckStatus.failed, "; ".join(problems), "; ".join(fixes)
    room = (
        f"; SQL visibility: {keywords_used} of its {limit} Keyword columns taken"
        if store == "sql"
        else f"; {store} visibility"
    )
    found = (
        f"namespace {namespace}: {len(search_attributes.ALL)} search attributes registered{room}"
    )
    return CheckStatus.ok, found, None
