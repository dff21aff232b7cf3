"""HTTP calls from activities to third-party APIs (Workload Security, Sunny Pay).

429 and 5xx are retried here, a few times, honouring ``Retry-After`` and heartbeating while
waiting, so that one busy endpoint does not restart a whole step that made several calls; when
the budget is spent the error is retryable and Temporal backs off. Other 4xx answers are the
caller's to map to final errors. Headers (they carry the API keys) are never logged.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from vending.activities.heartbeats import keepalive


def call(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    service: str,
    tries: int = 5,
    base_delay: float = 0.5,
    **kwargs: Any,
) -> httpx.Response:
    last = "no answer"
    for attempt in range(tries):
        keepalive()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as err:
            last, delay = f"{type(err).__name__}", base_delay * 2**attempt
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            last = f"HTTP {response.status_code} {_message(response)}"
            delay = _retry_after(response) or base_delay * 2**attempt
        if attempt + 1 < tries:
            keepalive()
            activity.wait_for_cancelled_sync(delay * random.uniform(0.8, 1.2))
            if activity.is_cancelled():
                raise CancelledError(f"cancelled while waiting for {service}")
    raise ApplicationError(f"{service} {method} {path}: {last}", type=f"{service}Unavailable")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("code") or "")
        return str(body.get("message") or "")
    return ""


def message_of(response: httpx.Response) -> str:
    return _message(response) or response.reason_phrase
