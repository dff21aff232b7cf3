"""Prometheus metrics and request ids for the API.

Every response carries ``X-Request-ID`` (the caller's, if it sent a sane one), every log line made
while serving it carries the same id, and one access line per request says route, status and
time. ``/metrics`` adds, at scrape time, how many requests sit in each open status: the number an
on-call engineer wants when approvals or operators fall behind.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from temporalio.client import Client

from common import search_attributes as sa
from common.logging_setup import account_request_id, http_request_id
from common.models import RequestStatus

log = logging.getLogger("vending.api.access")

REQUESTS = Counter(
    "vend_api_requests",
    "HTTP requests answered, by route and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "vend_api_request_duration_seconds",
    "Time to answer, by route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OPEN_REQUESTS = Gauge("vend_requests_open", "Open account requests by status", ["status"])
OPEN_STATUSES = (
    RequestStatus.pending_approval,
    RequestStatus.provisioning,
    RequestStatus.waiting_for_operator,
)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REQUEST_PATH = re.compile(r"^/v1/account-requests/([^/]+)")
COUNT_CACHE_SECONDS = 15.0


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        offered = request.headers.get("x-request-id", "")
        rid = offered if _SANE_ID.match(offered) else str(uuid.uuid4())
        http_token = http_request_id.set(rid)
        match = _REQUEST_PATH.match(request.url.path)
        account_token = account_request_id.set(match.group(1) if match else None)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = rid
            return response
        finally:
            elapsed = time.perf_counter() - started
            route_obj = request.scope.get("route")
            route = getattr(route_obj, "path", "unmatched")
            REQUESTS.labels(request.method, route, str(status)).inc()
            LATENCY.labels(request.method, route).observe(elapsed)
            log.info(
                "%s %s %s %.1fms",
                request.method,
                route,
                status,
                elapsed * 1000,
                extra={"status": status, "duration_ms": round(elapsed * 1000, 1)},
            )
            http_request_id.reset(http_token)
            account_request_id.reset(account_token)

    app.state.counted_at = 0.0
    app.include_router(router)


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition; open-request counts refreshed from Temporal at most every 15 s."""
    app = request.app
    if time.monotonic() - app.state.counted_at > COUNT_CACHE_SECONDS:
        client: Client = app.state.temporal
        try:
            for status in OPEN_STATUSES:
                count = await client.count_workflows(
                    f"WorkflowType = 'AccountVending' AND ExecutionStatus = 'Running' "
                    f"AND {sa.STATUS.name} = '{status.value}'"
                )
                OPEN_REQUESTS.labels(status.value).set(count.count)
            app.state.counted_at = time.monotonic()
        except Exception as err:  # metrics must answer even while Temporal is down
            logging.getLogger("vending.api").warning("could not count open requests: %s", err)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
