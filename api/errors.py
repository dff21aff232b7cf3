"""Every error as RFC 9457 problem details, and Temporal's errors mapped onto HTTP."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from common.intake import IntakeRefused

log = logging.getLogger("vending.api")
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:account-vending:problem:"

TITLES = {
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    503: "Unavailable",
}

# ApplicationError types raised by the workflow's update handlers and validators.
UPDATE_ERROR_STATUS = {
    "InvalidState": 409,
    "Duplicate": 409,
    "Conflict": 409,
    "Invalid": 422,  # e.g. a lease extended past its template's longest
    "NotFound": 404,  # e.g. an account that is not in the pool
    "SelfApproval": 403,
    "Forbidden": 403,  # e.g. an adoption out of an OU closed for vending
    "IdempotencyKeyReused": 422,
    "InvalidBillingCustomer": 422,
    "AccountMismatch": 422,  # an adoption named an account by another name or email
    "OrganizationsUnavailable": 503,
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors, self.headers = errors, headers

    def response(self, instance: str | None = None) -> JSONResponse:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(
            body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers
        )


def validation_problem(errors: list[dict[str, Any]], detail: str | None = None) -> Problem:
    return Problem(
        422,
        "Invalid request",
        detail or "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
        kind="validation",
        errors=errors,
    )


def refusal_problem(kind: str, message: str) -> Problem:
    """A refused submission: 409 conflicts, or 422 with the field the message starts with."""
    status = UPDATE_ERROR_STATUS.get(kind, 409)
    if status == 422 and ": " in message:
        field, _, msg = message.partition(": ")
        errors = [{"loc": ["body", *field.split(".")], "msg": msg}]
        return Problem(422, "Invalid request", message, kind="validation", errors=errors)
    return Problem(status, TITLES[status], message, kind=kind.lower())


def from_update_failure(err: WorkflowUpdateFailedError) -> Problem:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == "InvalidBillingCustomer":
        return refusal_problem(cause.type, cause.message)
    if isinstance(cause, ApplicationError):
        status = UPDATE_ERROR_STATUS.get(cause.type or "", 409)
        return Problem(
            status, TITLES[status], cause.message, kind=(cause.type or "conflict").lower()
        )
    return Problem(409, "Conflict", str(cause or err))


def from_rpc_error(err: RPCError) -> Problem:
    if err.status == RPCStatusCode.NOT_FOUND:
        log.info("temporal: not found: %s", err.message)
        return Problem(404, "Not found", "no such account request")
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        return Problem(422, "Invalid request", err.message, kind="validation")
    log.warning("temporal error: %s %s", err.status, err.message)
    return Problem(503, "Unavailable", "the workflow service is not reachable; try again")


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(IntakeRefused)
    async def _refused(request: Request, exc: IntakeRefused) -> JSONResponse:
        return validation_problem(exc.errors).response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        return validation_problem(errors).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {
            400: "Bad request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
        }
        return Problem(
            exc.status_code,
            title.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        ).response(request.url.path)

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update(request: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        return from_update_failure(exc).response(request.url.path)

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def _timeout(
        request: Request, exc: WorkflowUpdateRPCTimeoutOrCancelledError
    ) -> JSONResponse:
        return Problem(
            503, "Unavailable", "no worker answered in time; the request is unchanged, try again"
        ).response(request.url.path)

    @app.exception_handler(RPCError)
    async def _rpc(request: Request, exc: RPCError) -> JSONResponse:
        return from_rpc_error(exc).response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return Problem(500, "Internal error", "an unexpected error occurred").response(
            request.url.path
        )
