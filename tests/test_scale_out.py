"""Two workers and two API processes against one Temporal: requests spread over both and all
complete, with nothing in any process's memory that the others need (a page cursor signed by
one API replica is honoured by the other)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.stack import EmbeddedStack, free_port
from tests.conftest import Api

Body = Callable[..., dict[str, Any]]


def _metric(url: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@pytest.fixture
def second(stack: EmbeddedStack, tokens: dict[str, str]) -> Iterator[tuple[Api, str, str]]:
    api_port, metrics_port, api_metrics_port = free_port(), free_port(), free_port()
    worker = stack.start_worker("worker-b", metrics_port)
    api = stack.start_api(
        "api-b", api_port, {"VEND_API_METRICS_BIND_ADDRESS": f"127.0.0.1:{api_metrics_port}"}
    )
    try:
        yield (
            Api(f"http://127.0.0.1:{api_port}", tokens),
            f"http://127.0.0.1:{api_metrics_port}/metrics",
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        api.stop()
        worker.stop()


def test_two_workers_and_two_apis_share_the_load(
    api: Api, stack: EmbeddedStack, new_body: Body, second: tuple[Api, str, str]
) -> None:
    api_b, api_b_metrics, worker_b_metrics = second
    apis = [api, api_b]
    api_metrics = [stack.config.api_metrics_url, api_b_metrics]
    worker_metrics = [stack.config.worker_metrics_url, worker_b_metrics]
    created_route = {"route": "/v1/account-requests", "status": "201"}
    before_api = [_metric(u, "vend_api_requests_total", **created_route) for u in api_metrics]
    before_worker = [_metric(u, "vend_step_outcomes_total") for u in worker_metrics]

    ids = []
    for i in range(10):
        body = new_body(organizational_unit="Sandbox", environment="sandbox")
        resp = apis[i % 2].create("alice", body)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    finals = [
        apis[(i + 1) % 2].wait_for(rid, {"completed"}, timeout=180) for i, rid in enumerate(ids)
    ]
    assert all(f["account_id"] for f in finals)

    after_api = [_metric(u, "vend_api_requests_total", **created_route) for u in api_metrics]
    assert [a - b for a, b in zip(after_api, before_api, strict=True)] == [5, 5]
    after_worker = [_metric(u, "vend_step_outcomes_total") for u in worker_metrics]
    done = [a - b for a, b in zip(after_worker, before_worker, strict=True)]
    assert all(d > 0 for d in done), f"steps ended per worker: {done}"

    # A cursor from one replica pages on the other (VEND_CURSOR_SECRET is shared).
    page = api.call("GET", "/v1/account-requests", "alice", params={"limit": 2}).json()
    assert page["next_cursor"]
    more = api_b.call(
        "GET", "/v1/account-requests", "alice", params={"limit": 2, "cursor": page["next_cursor"]}
    )
    assert more.status_code == 200, more.text
    assert {r["id"] for r in more.json()["items"]}.isdisjoint({r["id"] for r in page["items"]})
