"""HTTP calls from activities to third-party APIs (Workload Security, Sunny Pay).

5xx and transport errors are retried here, a few times, heartbeating while waiting, so that one
busy endpoint does not restart a whole step that made several calls; when the budget is spent the
error is retryable and Temporal backs off. 429 is a rate limit, which clears by itself: it is
waited out for up to ``throttled_for_seconds`` (honouring ``Retry-After``, backing off), not
counted against those tries. Workload Security limits each key over a sliding minute, so a burst
of requests can be refused for most of a minute; five quick tries parked requests for an
operator who could do nothing (the 100-request fault run). Other 4xx answers are the caller's to
map to final errors. Headers (they carry the API keys) are never logged.
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import quote

import httpx
from temporalio.exceptions import ApplicationError

from activities.heartbeats import keepalive, pause


def path(template: str, **params: object) -> str:
    """A request path with every parameter percent-encoded (``/`` and ``?`` included), so a value
    can only ever name one resource: ``../registrations`` or ``x?y=1`` cannot reach another path
    with the worker's key."""
    return template.format(**{name: quote(str(value), safe="") for name, value in params.items()})


def call(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    service: str,
    tries: int = 5,
    base_delay: float = 0.5,
    throttled_for_seconds: float = 300.0,
    **kwargs: Any,
) -> httpx.Response:
    last = "no answer"
    failures = throttled = 0
    give_up_throttling = time.monotonic() + throttled_for_seconds
    while True:
        keepalive()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as err:
            last, failures = f"{type(err).__name__}", failures + 1
            delay = base_delay * 2 ** (failures - 1)
        else:
            if response.status_code != 429 and response.status_code < 500:
                return response
            last = f"HTTP {response.status_code} {_message(response)}"
            if response.status_code == 429:
                throttled += 1
                delay = max(_retry_after(response) or 0.0, base_delay * 2 ** min(throttled - 1, 6))
                if time.monotonic() + delay > give_up_throttling:
                    break
            else:
                failures += 1
                delay = _retry_after(response) or base_delay * 2 ** (failures - 1)
        if failures >= tries:
            break
        pause(min(delay, 60.0) * random.uniform(0.8, 1.2), waiting_for=service)
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
