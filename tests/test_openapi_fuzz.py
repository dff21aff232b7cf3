"""Hostile input: schemathesis generates requests from the API's own OpenAPI document, valid and
invalid, for every operation, with real tokens, against the running stack.

The checks: never a 5xx, every response matches its documented schema and status codes, and
content types are what the document says. A failure here is either a crash the API must turn into
a problem detail or a document that lies to client generators.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from api.app import create_app
from common.settings import AuthSettings, Settings
from sandbox.stack import EmbeddedStack

CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


# The document comes from the app object (the same code the running API serves), so tests are
# generated at collection time without a server.
_DEV = AuthSettings(mode="dev", dev_secret=SecretStr(secrets.token_urlsafe(32)))
schema = schemathesis.openapi.from_dict(create_app(Settings(auth=_DEV)).openapi())


@pytest.mark.resilience
@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_survives_generated_input(
    case: Any, tokens: dict[str, str], stack: EmbeddedStack
) -> None:
    # An admin sees every branch behind authorization; a requester meets the refusals.
    for user in ("frank", "alice"):
        case.call_and_validate(
            base_url=stack.config.api_url,
            headers={"Authorization": f"Bearer {tokens[user]}"},
            checks=CHECKS,
            timeout=30,
        )
