"""Sunny Pay billing registration (the contract in shared/spec/sunny-pay.md).

The API key lives in the injected httpx client's headers; it never enters an input, a result,
an error message or a log line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel
from temporalio import activity

from activities.aws_errors import final
from activities.heartbeats import beat
from activities.http_calls import call, message_of, path
from activities.waiting import until
from common.settings import BillingSettings

SERVICE = "SunnyPay"
_NAMESPACE = uuid.UUID("d2b6f4a0-3a59-4a64-9f39-7c2d8a3e5b21")


class CustomerInput(BaseModel):
    customer_id: str


class CustomerResult(BaseModel):
    known: bool | None  # None: the billing service cannot say


class BillingInput(BaseModel):
    request_id: str
    account_id: str
    account_name: str
    customer_id: str
    plan: str | None
    cost_center: str
    contact_email: str
    workload_security: bool
    run: int = 1


class RegistrationInput(BaseModel):
    registration_id: str


class BillingResult(BaseModel):
    registration_id: str
    status: str
    discount_percent: float | None = None
    adopted: bool
    detail: str
    attempt: int = 1


@dataclass
class BillingActivities:
    http: httpx.Client
    poll_interval_seconds: float = 10.0

    @activity.defn(no_thread_cancel_exception=True)
    def check_billing_customer(self, inp: CustomerInput) -> CustomerResult:
        try:
            resp = self.http.get(path("/v1/customers/{id}", id=inp.customer_id))
        except httpx.HTTPError:
            return CustomerResult(known=None)
        if resp.status_code == 200:
            return CustomerResult(known=True)
        if resp.status_code == 404 and _code(resp) == "unknown_customer":
            return CustomerResult(known=False)
        return CustomerResult(known=None)

    @activity.defn(no_thread_cancel_exception=True)
    def register_billing(self, inp: BillingInput) -> BillingResult:
        info = activity.info()
        existing = self._existing(inp)
        # POST even when a registration exists: the lookup does not say whose it is, and the
        # idempotent POST answers the same registration for the same customer, 409 otherwise.
        registration_id = self._register(inp)
        adopted = existing == registration_id
        settled = self._wait_until_settled(registration_id)
        if settled["status"] == "rejected":
            raise final(
                f"Sunny Pay rejected registration {registration_id}: {settled.get('reason')}",
                "BillingRejected",
            )
        return BillingResult(
            registration_id=registration_id,
            status=settled["status"],
            discount_percent=settled.get("discount_percent"),
            adopted=adopted,
            detail=f"registration {registration_id} active, "
            f"{settled.get('discount_percent') or 0}% discount",
            attempt=info.attempt,
        )

    def _existing(self, inp: BillingInput) -> str | None:
        resp = call(
            self.http,
            "GET",
            "/v1/registrations",
            service=SERVICE,
            params={"aws_account_id": inp.account_id},
        )
        self._raise_for_client_error(resp)
        for reg in resp.json().get("items", []):
            if reg["status"] != "rejected":
                return str(reg["registration_id"])
        return None

    def _register(self, inp: BillingInput) -> str:
        services = ["aws"] + (["cloud-one-workload-security"] if inp.workload_security else [])
        body = {
            "aws_account_id": inp.account_id,
            "account_name": inp.account_name,
            "customer_id": inp.customer_id,
            "plan": inp.plan,
            "cost_center": inp.cost_center,
            "contact_email": inp.contact_email,
            "services": services,
        }
        key = str(uuid.uuid5(_NAMESPACE, f"{inp.request_id}/{inp.run}"))
        resp = call(
            self.http,
            "POST",
            "/v1/registrations",
            service=SERVICE,
            json=body,
            headers={"Idempotency-Key": key},
        )
        if resp.status_code == 409:
            raise final(
                f"account {inp.account_id} is already registered with Sunny Pay to another "
                f"customer: {message_of(resp)}",
                "RegisteredToAnotherCustomer",
            )
        self._raise_for_client_error(resp)
        return str(resp.json()["registration_id"])

    def _wait_until_settled(self, registration_id: str) -> dict[str, Any]:
        beat(registration_id)
        return until(
            lambda: self._registration(registration_id),
            lambda reg: reg["status"] in ("active", "rejected"),
            self.poll_interval_seconds,
            waiting_for="Sunny Pay activation",
        )

    def _registration(self, registration_id: str) -> dict[str, Any]:
        resp = call(
            self.http, "GET", path("/v1/registrations/{id}", id=registration_id), service=SERVICE
        )
        self._raise_for_client_error(resp)
        reg: dict[str, Any] = resp.json()
        return reg

    @activity.defn(no_thread_cancel_exception=True)
    def deregister_billing(self, inp: RegistrationInput) -> BillingResult:
        """End the registration (compensation); an already-ended one is fine."""
        resp = call(
            self.http,
            "DELETE",
            path("/v1/registrations/{id}", id=inp.registration_id),
            service=SERVICE,
        )
        if resp.status_code != 404:
            self._raise_for_client_error(resp)
        return BillingResult(
            registration_id=inp.registration_id,
            status="deleted",
            adopted=False,
            detail=f"registration {inp.registration_id} ended",
            attempt=activity.info().attempt,
        )

    @staticmethod
    def _raise_for_client_error(resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        if resp.status_code == 401:
            raise final(
                "Sunny Pay refused the API key (401); check the configured key",
                "BillingUnauthorized",
            )
        raise final(
            f"Sunny Pay answered {resp.status_code}: {message_of(resp)}", "BillingRequestInvalid"
        )


def _code(resp: httpx.Response) -> str | None:
    try:
        err = resp.json().get("error", {})
    except ValueError:
        return None
    return err.get("code") if isinstance(err, dict) else None


def sunnypay_http(settings: BillingSettings) -> httpx.Client:
    """The Sunny Pay client; its key sits in the client's headers and nowhere else."""
    headers = {}
    if settings.api_key is not None:
        headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
    return httpx.Client(
        base_url=settings.base_url.rstrip("/") + "/",
        headers=headers,
        timeout=settings.timeout_seconds,
    )
