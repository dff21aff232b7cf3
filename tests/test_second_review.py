"""The second security review's findings (issue 31), each with a test that failed before its fix.

Items 1-3 (adoption's source OU, a template's reach, the template diff) are tested beside the
adoption and rollout tests (tests/test_account_lifecycle.py, tests/test_rollouts.py); item 9 in
tests/test_step_failures.py; item 11 in tests/test_reads_without_worker.py.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from typer.testing import CliRunner

from api.dev_auth_guard import DevAuthLoopbackOnly
from cli.main import app as cli_app
from cli.main import uvicorn_options
from common import account_contract, search_attributes
from common.auth import TokenVerifier, mint_dev_token
from common.codec import data_converter
from common.models import AuditEvent, ChangeFinished, RequestKind, RequestStatus, Role
from common.settings import AuthSettings, Settings
from sandbox.stack import EmbeddedStack, sandbox_secrets
from tests.conftest import Api, codec_settings
from tests.waiting import wait_until

Body = Callable[..., dict[str, Any]]
GOOD_SECRET = "s" * 43


def _dev(**kw: Any) -> AuthSettings:
    return AuthSettings(mode="dev", dev_secret=SecretStr(GOOD_SECRET), **kw)


def _until(ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
    wait_until(ready, what, timeout)


def _token(stack: EmbeddedStack, sub: str, roles: list[Role], email: str | None = None) -> str:
    auth = AuthSettings(dev_secret_file=stack.config.data_dir / "dev-secret")
    return mint_dev_token(auth, sub, roles, email=email)


# ------------------------------------------------------------------ 4. verified email, domains
def test_an_unverified_email_grants_no_ownership() -> None:
    import jwt

    settings = _dev()
    verifier = TokenVerifier(settings)
    now = int(time.time())
    claims = {
        "sub": "eve",
        "email": "alice@example.com",  # alice's address, not verified by the issuer
        "roles": ["requester"],
        "iss": settings.issuer,
        "aud": settings.audience,
        "exp": now + 60,
    }
    unverified = jwt.encode(claims, GOOD_SECRET, algorithm="HS256")
    assert verifier.verify(unverified).email is None
    verified = jwt.encode({**claims, "email_verified": True}, GOOD_SECRET, algorithm="HS256")
    assert verifier.verify(verified).email == "alice@example.com"
    trusting = TokenVerifier(_dev(require_email_verified=False))
    assert trusting.verify(unverified).email == "alice@example.com"


def test_owner_and_contact_emails_are_held_to_the_landing_zones_domains(
    api: Api, new_body: Body
) -> None:
    outside = api.create("alice", new_body(owner_email="mallory@evil.example.net"))
    assert outside.status_code == 422, outside.text
    assert any(e["loc"][-1] == "owner_email" for e in outside.json()["errors"])
    contact = {"name": "X", "title": "Y", "email": "x@evil.example.net", "phone": "+1 555 0100"}
    body = new_body(
        organizational_unit="Experiments/Settings",
        alternate_contacts={"security": contact},
        budget={"monthly_usd": 1000},
    )
    refused = api.create("alice", body)
    assert refused.status_code == 422, refused.text
    assert ["body", "alternate_contacts", "security", "email"] in [
        e["loc"] for e in refused.json()["errors"]
    ]


# ------------------------------------------------------------------ 5. caps and bounded trails
def _owned_account(api: Api, stack: EmbeddedStack, new_body: Body) -> tuple[str, str, str]:
    """A Sandbox account owned (and requested) by a user of its own: (account, user, token)."""
    user = f"owner-{uuid.uuid4().hex[:8]}"
    token = _token(stack, user, [Role.requester], email=f"{user}@example.com")
    body = new_body(
        organizational_unit="Sandbox", environment="sandbox", owner_email=f"{user}@example.com"
    )
    made = api.http.post(
        "/v1/account-requests", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert made.status_code == 201, made.text
    done = api.wait_for(made.json()["id"], {"completed"})
    return str(done["account_id"]), user, token


def test_changes_count_against_the_open_request_cap_and_a_per_account_cap(
    api: Api, stack: EmbeddedStack, new_body: Body, limited: Callable[..., httpx.Client]
) -> None:
    account, _, token = _owned_account(api, stack, new_body)
    auth = {"Authorization": f"Bearer {token}"}
    capped = limited(
        {
            "VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "1",
            "VEND_LIMITS__OPEN_CHANGES_PER_ACCOUNT": "0",
        }
    )
    change = {"kind": "update", "justification": "a new cost center", "cost_center": "CC-9"}
    # A decommission waits for an approval: one open request.
    closing = capped.post(
        f"/v1/accounts/{account}/changes",
        json={
            "kind": "decommission",
            "justification": "done with it",
            "confirm_account_name": _name(api, account),
        },
        headers=auth,
    )
    assert closing.status_code == 201, closing.text
    answers: list[httpx.Response] = []

    def refused_over_the_cap() -> bool:  # visibility may lag the decommission's start
        answers.append(capped.post(f"/v1/accounts/{account}/changes", json=change, headers=auth))
        assert answers[-1].status_code in (201, 429), answers[-1].text
        return answers[-1].status_code == 429

    _until(refused_over_the_cap, "the open-request cap")
    assert answers[-1].json()["type"].endswith("too-many-open-requests")

    per_account = limited(
        {
            "VEND_LIMITS__OPEN_REQUESTS_PER_REQUESTER": "0",
            "VEND_LIMITS__OPEN_CHANGES_PER_ACCOUNT": "1",
        }
    )
    refused = per_account.post(f"/v1/accounts/{account}/changes", json=change, headers=auth)
    assert refused.status_code == 429, refused.text
    assert refused.json()["type"].endswith("too-many-open-changes")
    cancelled = api.http.post(
        f"/v1/account-requests/{closing.json()['id']}/cancel",
        json={"reason": "test over"},
        headers=auth,
    )
    assert cancelled.status_code == 200, cancelled.text


def _name(api: Api, account: str) -> str:
    return str(api.call("GET", f"/v1/accounts/{account}", "carol").json()["account_name"])


async def test_an_accounts_trail_stays_bounded_and_pages(
    api: Api, stack: EmbeddedStack, new_body: Body
) -> None:
    """Six hundred lines of 2,000 characters from one change: the account keeps its newest
    EVENT_WINDOW, each cut short, and the API pages through them; before, every line was kept
    whole and carried through continue-as-new."""
    made = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    done = await asyncio.to_thread(api.wait_for, made.json()["id"], {"completed"})
    account = str(done["account_id"])
    client = await Client.connect(
        stack.config.temporal_address, data_converter=data_converter(codec_settings(stack))
    )
    now = datetime.now(UTC)
    flood = [
        AuditEvent(at=now, actor="alice", action="note", outcome=str(i), detail="x" * 2000)
        for i in range(600)
    ]
    await client.get_workflow_handle(account_contract.account_workflow_id(account)).signal(
        account_contract.CHANGE_FINISHED,
        ChangeFinished(
            request_id=str(uuid.uuid4()),
            kind=RequestKind.update,
            status=RequestStatus.rejected,
            events=flood,
        ),
    )

    def trail(**params: Any) -> dict[str, Any]:
        got = api.call("GET", f"/v1/accounts/{account}/events", "alice", params=params)
        assert got.status_code == 200, got.text
        return dict(got.json())

    await asyncio.to_thread(
        _until, lambda: trail(limit=1)["items"][-1]["action"] == "change", "the flood recorded"
    )
    newest = trail(limit=500)
    assert len(newest["items"]) == account_contract.EVENT_WINDOW
    assert newest["dropped"] > 0 and newest["next_cursor"] is None
    notes = [e for e in newest["items"] if e["action"] == "note"]
    assert all(len(e["detail"]) <= account_contract.EVENT_DETAIL_CHARS for e in notes)
    assert notes[-1]["outcome"] == "599"
    first = trail(limit=100)
    assert len(first["items"]) == 100 and first["next_cursor"]
    second = trail(limit=100, cursor=first["next_cursor"])
    assert second["items"][-1]["outcome"] == str(int(first["items"][0]["outcome"]) - 1)


# ------------------------------------------------------------------ 6. previews and checks
def test_previews_and_checks_need_a_role_have_a_rate_and_share_answers(
    api: Api, stack: EmbeddedStack, new_body: Body, limited: Callable[..., httpx.Client]
) -> None:
    account, user, token = _owned_account(api, stack, new_body)
    roleless = _token(stack, user, [], email=f"{user}@example.com")  # the owner, no role
    change = {"kind": "update", "justification": "look first", "cost_center": "CC-7"}
    path = f"/v1/accounts/{account}/changes/preview"
    no_role = api.http.post(path, json=change, headers={"Authorization": f"Bearer {roleless}"})
    assert no_role.status_code == 403, no_role.text
    rated = limited(
        {
            "VEND_LIMITS__PREVIEWS_PER_MINUTE": "2",
            "VEND_LIMITS__CHECKS_PER_MINUTE": "2",
            "VEND_LIMITS__HEALTH_CACHE_SECONDS": "600",
        }
    )
    auth = {"Authorization": f"Bearer {token}"}
    answers = [rated.post(path, json=change, headers=auth).status_code for _ in range(3)]
    assert answers == [200, 200, 429], answers
    carol = {"Authorization": f"Bearer {api.tokens['carol']}"}
    reports = [rated.get("/v1/landing-zone/health", headers=carol) for _ in range(2)]
    assert [r.status_code for r in reports] == [200, 200], reports[0].text
    assert reports[0].json()["checked_at"] == reports[1].json()["checked_at"]  # one preflight
    assert rated.get("/v1/landing-zone/health", headers=carol).status_code == 429
    drift_rated = limited({"VEND_LIMITS__CHECKS_PER_MINUTE": "1"})
    check = {"account_ids": [account]}
    first = drift_rated.post("/v1/drift-checks", json=check, headers=carol)
    assert first.status_code == 201, first.text
    assert drift_rated.post("/v1/drift-checks", json=check, headers=carol).status_code == 429


# ------------------------------------------------------------------ 7. where the app is built
def test_dev_auth_answers_loopback_only_however_the_app_is_served() -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from common.settings import TemporalSettings

    settings = Settings(auth=_dev(), temporal=TemporalSettings(address="127.0.0.1:1"))
    app = create_app(settings)
    with TestClient(app, base_url="http://10.1.2.3:8000") as network:
        refused = network.get("/healthz")
        assert refused.status_code == 403 and "loopback" in refused.json()["detail"]
    with TestClient(app, base_url="http://127.0.0.1:8000") as loopback:
        assert loopback.get("/healthz").status_code == 200
    allowed = Settings(
        auth=_dev(allow_insecure_dev_auth=True), temporal=TemporalSettings(address="127.0.0.1:1")
    )
    with TestClient(create_app(allowed), base_url="http://10.1.2.3:8000") as network:
        assert network.get("/healthz").status_code == 200
    assert DevAuthLoopbackOnly(app, AuthSettings(mode="oidc")).active is False


def test_the_cursor_secret_is_long_and_never_a_published_one() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings(cursor_secret=SecretStr("sandbox-only-cursor-secret"))
    with pytest.raises(ValueError, match="at least 32"):
        Settings(cursor_secret=SecretStr("short"))
    Settings(cursor_secret=SecretStr("c" * 43))
    import hashlib

    from common.settings import PUBLISHED_CURSOR_SECRETS

    assert hashlib.sha256(b"sandbox-only-cursor-secret").hexdigest() in PUBLISHED_CURSOR_SECRETS


# ------------------------------------------------------------------ 8. rates are per process
def test_the_openapi_says_rates_are_per_api_process() -> None:
    from api.openapi import DESCRIPTIONS

    assert "N replicas" in DESCRIPTIONS[429]


# ------------------------------------------------------------------ 10. the secrets file
def test_the_sandbox_secrets_file_is_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created 0600 in the call that creates it: no chmod afterwards to race with."""
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: None)
    monkeypatch.setattr(os, "chmod", lambda *_a, **_k: None)
    old = os.umask(0)
    try:
        values = sandbox_secrets(tmp_path)
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "sandbox-secrets.json").stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert sandbox_secrets(tmp_path) == values  # made once, read back


# ------------------------------------------------------------------ 12. behind a TLS proxy
def test_a_named_proxy_is_believed_and_hsts_is_sent_behind_it() -> None:
    from fastapi.testclient import TestClient
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from api.app import create_app
    from common.settings import TemporalSettings

    settings = Settings(
        auth=_dev(allow_insecure_dev_auth=True),
        temporal=TemporalSettings(address="127.0.0.1:1"),
        forwarded_allow_ips="10.0.0.5",
    )
    options = uvicorn_options(settings, "0.0.0.0", 8000)
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == "10.0.0.5"
    assert uvicorn_options(Settings(), "0.0.0.0", 8000)["forwarded_allow_ips"] == "127.0.0.1"
    app = ProxyHeadersMiddleware(create_app(settings), trusted_hosts=options["forwarded_allow_ips"])
    headers = {"X-Forwarded-Proto": "https"}
    with TestClient(app, base_url="http://10.9.9.9", client=("10.0.0.5", 4000)) as proxied:
        assert "strict-transport-security" in proxied.get("/healthz", headers=headers).headers
    with TestClient(app, base_url="http://10.9.9.9", client=("10.0.0.6", 4000)) as stranger:
        assert "strict-transport-security" not in stranger.get("/healthz", headers=headers).headers


# ------------------------------------------------------------------ 13, 14. owners
def test_rights_follow_the_current_owner_and_owners_do_not_approve_their_own(
    api: Api, new_body: Body
) -> None:
    made = api.create("alice", new_body()).json()  # Workloads/SDLC: one approval
    api.act("bob", made["id"], "approve", {})
    account = str(api.wait_for(made["id"], {"completed"})["account_id"])
    path = f"/v1/accounts/{account}/changes"
    handover = {"kind": "update", "justification": "erin's now", "owner_email": "erin@example.com"}
    moved = api.call("POST", path, "alice", json=handover)
    assert moved.status_code == 201, moved.text
    api.act("bob", moved.json()["id"], "approve", {})
    api.wait_for(moved.json()["id"], {"completed"})
    _until(
        lambda: (
            api.call("GET", f"/v1/accounts/{account}", "carol").json()["owner_email"]
            == "erin@example.com"
        ),
        "the new owner recorded",
    )
    change = {"kind": "update", "justification": "a new cost center", "cost_center": "CC-77"}
    assert api.call("POST", path, "alice", json=change).status_code == 403  # no longer hers
    filed = api.call("POST", path, "frank", json=change)
    assert filed.status_code == 201, filed.text
    own = api.act("erin", filed.json()["id"], "approve", {})
    assert own.status_code == 403 and "owner" in own.json()["detail"], own.text
    assert api.act("bob", filed.json()["id"], "approve", {}).status_code == 200


# ------------------------------------------------------------------ 15. keyed owner digest
def test_the_owner_search_attribute_is_keyed() -> None:
    import hashlib

    a = search_attributes.owner_digest("alice@example.com", b"k" * 32)
    assert a == search_attributes.owner_digest(" Alice@Example.com ", b"k" * 32)
    assert a != search_attributes.owner_digest("alice@example.com", b"j" * 32)
    plain = hashlib.sha256(b"owner:alice@example.com").hexdigest()[:40]
    assert a != plain  # what the old, unkeyed attribute held
    derived = Settings(cursor_secret=SecretStr("c" * 43)).owner_key()
    assert derived != Settings(cursor_secret=SecretStr("d" * 43)).owner_key()
    own = Settings(cursor_secret=SecretStr("c" * 43), owner_digest_key=SecretStr("o" * 40))
    assert own.owner_key() == b"o" * 40


def test_the_owner_filter_still_finds_the_owners_accounts(api: Api, new_body: Body) -> None:
    made = api.create("alice", new_body(organizational_unit="Sandbox", environment="sandbox"))
    account = str(api.wait_for(made.json()["id"], {"completed"})["account_id"])

    def listed() -> bool:
        page = api.call(
            "GET", "/v1/accounts", "carol", params={"owner": "alice@example.com", "limit": 100}
        ).json()
        cursor, found = page["next_cursor"], {a["account_id"] for a in page["items"]}
        while account not in found and cursor:
            page = api.call("GET", "/v1/accounts", "carol", params={"cursor": cursor}).json()
            found |= {a["account_id"] for a in page["items"]}
            cursor = page["next_cursor"]
        return account in found

    _until(listed, "the account listed under its owner")


# ------------------------------------------------------------------ 16. rollout parameters
def test_rollout_parameters_are_bounded_and_must_be_the_stack_sets(api: Api) -> None:
    base = {"baseline": "audit-role", "reason": "parameters", "organizational_units": ["Sandbox"]}
    many = {f"P{i}": "v" for i in range(61)}
    assert (
        api.call("POST", "/v1/rollouts", "carol", json={**base, "parameters": many}).status_code
        == 422
    )
    bad_key = {**base, "parameters": {"not a key!": "v"}}
    assert api.call("POST", "/v1/rollouts", "carol", json=bad_key).status_code == 422
    long_value = {**base, "parameters": {"AuditAccountId": "1" * 5000}}
    assert api.call("POST", "/v1/rollouts", "carol", json=long_value).status_code == 422
    unknown = api.call(
        "POST", "/v1/rollouts", "carol", json={**base, "parameters": {"NoSuchParameter": "x"}}
    )
    assert unknown.status_code == 422, unknown.text
    assert "NoSuchParameter" in unknown.json()["detail"]


# ------------------------------------------------------------------ 17. the CLI's token
@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://vend.example.com", True),
        ("http://10.0.0.8:8000", True),
        ("https://127.0.0.1:1", False),
        ("http://127.0.0.1:1", False),
        ("http://localhost:1", False),
    ],
)
def test_the_cli_sends_its_token_over_tls_or_to_loopback_only(url: str, refused: bool) -> None:
    result = CliRunner().invoke(
        cli_app, ["requests", "list"], env={"VEND_API_URL": url, "VEND_TOKEN": "t.o.k"}
    )
    assert result.exit_code == 2
    if refused:
        assert "refusing to send the token" in result.output
    else:  # let through, and the connection itself fails (nothing listens)
        assert "not reachable" in result.output


def test_the_cli_says_when_there_is_no_token() -> None:
    result = CliRunner().invoke(
        cli_app, ["requests", "list"], env={"VEND_API_URL": "http://127.0.0.1:1", "VEND_TOKEN": ""}
    )
    assert result.exit_code == 2 and "no token" in result.output
