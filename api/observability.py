"""Prometheus metrics and request ids for the API.

Every response carries ``X-Request-ID`` (the caller's, if it sent a sane one), every log line made
while serving it carries the same id, and one access line per request says route, status and
time. Metrics are served on a port of their own (``VEND_API_METRICS_BIND_ADDRESS``), never on
the port that faces callers, and include how many requests sit in each open status (refreshed
every 15 s): the number an on-call engineer wants when approvals or operators fall behind.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Gauge, Histogram, start_http_server
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


def serve_metrics(bind_address: str) -> None:
    """Prometheus exposition on its own address, in a thread (prometheus-client's server)."""
    host, _, port = bind_address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")


async def count_open_requests(client: Client) -> None:
    """Keep the open-request gauges current; metrics must answer even while Temporal is down."""
    while True:
        try:
            for status in OPEN_STATUSES:
                count = await client.count_workflows(
                    f"WorkflowType = 'AccountVending' AND ExecutionStatus = 'Running' "
                    f"AND {sa.STATUS.name} = '{status.value}'"
                )
                OPEN_REQUESTS.labels(status.value).set(count.count)
        except Exception as err:
            logging.getLogger("vending.api").warning("could not count open requests: %s", err)
        await asyncio.sleep(COUNT_CACHE_SECONDS)
