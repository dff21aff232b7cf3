"""The Sunny Pay billing emulator: the contract in shared/spec/sunny-pay.md, exactly.

- Bearer key checked (401); errors as ``{"error": {"code", "message"}}``.
- ``POST /v1/registrations`` with ``Idempotency-Key``: the same key and body answer the first
  result again; the same key with another body is 422; an account registered to another
  customer is 409.
- Activation is asynchronous: ``pending`` for ``activation_seconds``, then ``active``, or
  ``rejected`` with a reason (unknown customer).
- ``GET /v1/customers/{id}`` (an extension the engine uses to refuse unknown customers at
  request time) answers 404 ``unknown_customer``.
- A fault plan (429 with Retry-After, 5xx) and state that survives restarts (a JSON file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from sandbox.aws.faults import FaultPlan

KNOWN_CUSTOMERS = {"cust-001": "Example KK", "cust-002": "Sample Trading", "cust-003": "Demo Inc"}
SERVICES = {"aws", "cloud-one-workload-security"}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


class SunnyPayState:
    def __init__(self, path: Path | None, activation_seconds: float) -> None:
        self.path = path
        self.activation_seconds = activation_seconds
        self.registrations: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, dict[str, str]] = {}  # key -> {fingerprint, registration_id}
        self.customers = dict(KNOWN_CUSTOMERS)
        self.lock = threading.RLock()
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.registrations, self.idempotency = data["registrations"], data["idempotency"]

    def save(self) -> None:
        """Write the state atomically. Under the lock: requests are served from many threads,
        and two writers sharing one temporary file lose the rename race (a 500 the benchmark
        found at 100 concurrent clients)."""
        if self.path is None:
            return
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(
                json.dumps({"registrations": self.registrations, "idempotency": self.idempotency})
            )
            tmp.replace(self.path)

    def view(self, reg: dict[str, Any]) -> dict[str, Any]:
        """The registration as it stands now (activation happens with time)."""
        if reg["status"] == "pending" and time.time() >= reg["ready_at"]:
            if reg["customer_id"] in self.customers:
                reg["status"], reg["discount_percent"] = "active", 5
                reg["effective_from"] = datetime.now(UTC).date().isoformat()
            else:
                reg["status"] = "rejected"
                reg["reason"] = f"unknown customer {reg['customer_id']}"
            self.save()
        keys = (
            "registration_id",
            "aws_account_id",
            "status",
            "discount_percent",
            "effective_from",
            "reason",
        )
        return {k: reg.get(k) for k in keys}


def create_app(state: SunnyPayState, api_key: str, faults: FaultPlan) -> FastAPI:
    app = FastAPI(title="Sunny Pay (sandbox)")

    @app.middleware("http")
    async def _gate(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if path.startswith("/_sandbox"):
            return await call_next(request)
        faults.record_call("sunnypay", f"{request.method} {path}")
        if request.headers.get("authorization") != f"Bearer {api_key}":
            return _error(401, "unauthorized", "missing or invalid API key")
        body = (await request.body()).decode("utf-8", "replace")
        rule = faults.take("sunnypay", f"{request.method} {path}", body, "error")
        if rule is not None:
            headers = {"Retry-After": "1"} if rule.status == 429 else None
            return _error(rule.status, rule.error or "unavailable", rule.message, headers)
        return await call_next(request)

    @app.get("/v1/customers/{customer_id}")
    def customer(customer_id: str) -> Any:
        name = state.customers.get(customer_id)
        if name is None:
            return _error(404, "unknown_customer", f"no customer {customer_id}")
        return {"customer_id": customer_id, "name": name}

    @app.post("/v1/registrations")
    async def register(request: Request, idempotency_key: str | None = Header(default=None)) -> Any:
        if not idempotency_key:
            return _error(422, "invalid", "the Idempotency-Key header is required")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(422, "invalid", "the body is not JSON")
        problem = _invalid(body)
        if problem:
            return _error(422, "invalid", problem)
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with state.lock:
            seen = state.idempotency.get(idempotency_key)
            if seen is not None:
                if seen["fingerprint"] != fingerprint:
                    return _error(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with another body",
                    )
                reg = state.registrations[seen["registration_id"]]
                return JSONResponse(
                    {
                        "registration_id": reg["registration_id"],
                        "status": state.view(reg)["status"],
                    },
                    202,
                )
            for reg in state.registrations.values():
                live = state.view(reg)["status"] != "rejected" and not reg.get("deleted")
                same_account = reg["aws_account_id"] == body["aws_account_id"]
                if same_account and live and reg["customer_id"] != body["customer_id"]:
                    return _error(
                        409,
                        "registered_to_another_customer",
                        f"account {body['aws_account_id']} is registered to another customer",
                    )
                if same_account and live:  # same customer, another key: one registration
                    return JSONResponse(
                        {"registration_id": reg["registration_id"], "status": reg["status"]}, 202
                    )
            reg_id = f"reg_{secrets.token_hex(8)}"
            state.registrations[reg_id] = {
                **body,
                "registration_id": reg_id,
                "status": "pending",
                "ready_at": time.time() + state.activation_seconds,
            }
            state.idempotency[idempotency_key] = {
                "fingerprint": fingerprint,
                "registration_id": reg_id,
            }
            state.save()
        return JSONResponse({"registration_id": reg_id, "status": "pending"}, 202)

    @app.get("/v1/registrations/{registration_id}")
    def get_registration(registration_id: str) -> Any:
        reg = state.registrations.get(registration_id)
        if reg is None or reg.get("deleted"):
            return _error(404, "not_found", f"no registration {registration_id}")
        return state.view(reg)

    @app.get("/v1/registrations")
    def find(aws_account_id: str) -> Any:
        found = [
            state.view(r)
            for r in state.registrations.values()
            if r["aws_account_id"] == aws_account_id and not r.get("deleted")
        ]
        return {"items": found}

    @app.delete("/v1/registrations/{registration_id}")
    def delete(registration_id: str) -> Any:
        reg = state.registrations.get(registration_id)
        if reg is None or reg.get("deleted"):
            return _error(404, "not_found", f"no registration {registration_id}")
        reg["deleted"] = True
        state.save()
        return JSONResponse(None, 204)

    # --------------------------------------------------------------- sandbox control
    @app.post("/_sandbox/faults")
    def add_fault(rule: dict[str, Any]) -> Any:
        return {"added": faults.add(**rule).__dict__}

    @app.delete("/_sandbox/faults")
    def clear_faults() -> Any:
        faults.clear()
        return {"cleared": True}

    @app.get("/_sandbox/state")
    def sandbox_state() -> Any:
        return {
            "registrations": [
                state.view(r) | {"customer_id": r["customer_id"], "deleted": bool(r.get("deleted"))}
                for r in state.registrations.values()
            ],
            **faults.describe(),
        }

    @app.post("/_sandbox/config")
    def configure(cfg: dict[str, Any]) -> Any:
        if "activation_seconds" in cfg:
            state.activation_seconds = float(cfg["activation_seconds"])
        return {"configured": cfg}

    return app


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be an object"
    for field in ("aws_account_id", "account_name", "customer_id", "contact_email"):
        if not isinstance(body.get(field), str) or not body[field]:
            return f"{field} is required"
    if not (len(body["aws_account_id"]) == 12 and body["aws_account_id"].isdigit()):
        return "aws_account_id must be 12 digits"
    services = body.get("services")
    if not isinstance(services, list) or not services or not set(services) <= SERVICES:
        return f"services must be a non-empty subset of {sorted(SERVICES)}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--activation-seconds", type=float, default=2.0)
    args = parser.parse_args()
    api_key = os.environ["SUNNYPAY_SANDBOX_API_KEY"]  # env, not argv: argv is visible to `ps`
    state = SunnyPayState(args.state_file, args.activation_seconds)
    app = create_app(state, api_key, FaultPlan())
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
