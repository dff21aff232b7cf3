"""The OpenAPI document tells the truth about errors.

FastAPI documents only the success response and its own 422 shape; our errors are RFC 9457
problem details served as ``application/problem+json``. Client generators and schemathesis read
the document, so every status a route can answer is listed with the problem schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from api.errors import PROBLEM_JSON


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; validation problems add ``errors``."""

    type: str = Field(examples=["urn:account-vending:problem:validation"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


DESCRIPTIONS = {
    400: "The body is not parseable (not UTF-8 or not JSON)",
    401: "No bearer token, or one that does not verify",
    403: "The caller's role may not do this",
    404: "No such account request (or not yours to see)",
    409: "The request is not in a state that allows this, or the name or email is in use",
    413: "The request body is larger than the API accepts (VEND_LIMITS__MAX_BODY_BYTES)",
    422: "Invalid input; `errors` lists each field",
    429: (
        "Too many calls (see `Retry-After`) or too many open requests for this caller. The "
        "call and create rates are counted by each API process: behind N replicas a caller "
        "gets up to N times the rate (the open-request cap is counted across the cluster)"
    ),
    503: "Temporal (or an external check) is not reachable; try again",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: these statuses answer problem details."""
    return {code: {"description": DESCRIPTIONS[code]} for code in codes}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem.pop("$defs", {}))
        schemas["ProblemDetails"] = problem
        ref = {"$ref": "#/components/schemas/ProblemDetails"}
        for operations in doc.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM_JSON: {"schema": ref}}
                        if response.get("description") == "Validation Error":
                            response["description"] = DESCRIPTIONS[422]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
