"""Metrics from the API and the worker, and JSON log lines that carry the request's ids."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sandbox.stack import EmbeddedStack
from tests.conftest import LOGS, Api
from tests.waiting import eventually

Body = Callable[..., dict[str, Any]]


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(
        v for n, lbl, v in samples if n == name and all(lbl.get(k) == x for k, x in labels.items())
    )


def test_api_metrics_by_route_and_status(api: Api, stack: EmbeddedStack, new_body: Body) -> None:
    req = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    assert req.status_code == 201
    api.wait_for(req.json()["id"], {"completed"})
    assert api.get("alice", "no-such-request").status_code == 404
    # Not on the port that faces callers; on the metrics port of its own.
    assert httpx.get(f"{stack.config.api_url}/metrics").status_code == 404
    text = httpx.get(stack.config.api_metrics_url).text
    samples = _samples(text)
    route = "/v1/account-requests/{request_id}"
    assert _value(samples, "vend_api_requests_total", route=route, status="200") >= 1
    assert _value(samples, "vend_api_requests_total", route=route, status="404") >= 1
    created = _value(samples, "vend_api_requests_total", route="/v1/account-requests", status="201")
    assert created >= 1
    assert _value(samples, "vend_api_request_duration_seconds_count", route=route) >= 2
    # Route templates, never raw paths: one request id must not become one time series.
    assert not any("no-such-request" in lbl.get("route", "") for _, lbl, _ in samples)
    assert any(n == "vend_requests_open" for n, _, _ in samples)


def test_worker_exports_sdk_and_step_metrics(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    req = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    api.wait_for(req.json()["id"], {"completed"})
    samples = eventually(  # the SDK exports on an interval
        lambda: _samples(httpx.get(stack.config.worker_metrics_url).text),
        lambda found: (
            _value(found, "vend_step_outcomes_total", step="create_account", result="succeeded")
            >= 1
        ),
        "a succeeded create_account counted in the worker's metrics",
        timeout=30,
    )
    assert (
        _value(
            samples, "vend_step_outcomes_total", step="enroll_workload_security", result="skipped"
        )
        >= 1
    )
    assert _value(samples, "vend_step_duration_seconds_count", step="create_account") >= 1
    assert _value(samples, "vend_request_transitions_total", status="completed") >= 1
    assert any(n.startswith("temporal_") for n, _, _ in samples)  # the SDK's own


def test_logs_are_json_with_request_and_workflow_ids(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    req = api.create(
        "alice",
        new_body(organizational_unit="Sandbox", environment="sandbox"),
        headers={"X-Request-ID": "trace-abc-123"},
    )
    assert req.headers["x-request-id"] == "trace-abc-123"
    request_id = req.json()["id"]
    api.wait_for(request_id, {"completed"})
    api.get("alice", request_id)
    lines: dict[str, list[dict[str, Any]]] = {}
    for name in ("worker", "api"):
        path = LOGS / f"{name}.log"
        records = []
        for raw in path.read_text().splitlines():
            if raw.startswith("{"):
                records.append(json.loads(raw))  # every JSON-looking line parses
        lines[name] = records
    worker = [r for r in lines["worker"] if r.get("request_id") == request_id]
    assert worker, "no worker line carried the request id"
    assert all(r["workflow_id"] == f"account-request-{request_id}" for r in worker)
    assert {"time", "level", "logger", "message"} <= set(worker[0])
    created = [r for r in lines["api"] if r.get("http_request_id") == "trace-abc-123"]
    assert created and created[-1]["logger"] == "vending.api.access"
    reads = [r for r in lines["api"] if r.get("request_id") == request_id]
    assert any(r.get("status") == 200 for r in reads)
