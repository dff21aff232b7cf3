"""The security review's findings (issue 13), each with the test that failed before its fix.

Safe by default: the unsafe value of every setting here must be asked for by name, and refuses
to apply where it would be dangerous.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from activities.billing import BillingActivities, CustomerInput
from activities.http_calls import path
from cli.main import app
from common.auth import TokenVerifier, check_dev_secret, ensure_dev_secret, refuse_unsafe_dev_auth
from common.settings import AuthSettings, Settings
from tests.conftest import Api

Body = Callable[..., dict[str, Any]]
GOOD_SECRET = "s" * 43


# ------------------------------------------------------------------ 2. dev auth is not the default
def test_oidc_is_the_default_and_the_api_refuses_to_start_without_an_issuer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in list(os.environ):
        if key.startswith("VEND_AUTH__"):
            monkeypatch.delenv(key)
    assert Settings().auth.mode == "oidc"
    with pytest.raises(ValueError, match="JWKS_URL"):
        TokenVerifier(Settings().auth)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "vend.example.com"])
def test_dev_auth_refuses_a_non_loopback_bind(host: str) -> None:
    dev = AuthSettings(mode="dev", dev_secret=SecretStr(GOOD_SECRET))
    with pytest.raises(ValueError, match="ALLOW_INSECURE_DEV_AUTH"):
        refuse_unsafe_dev_auth(dev, host)
    refuse_unsafe_dev_auth(dev.model_copy(update={"allow_insecure_dev_auth": True}), host)
    refuse_unsafe_dev_auth(AuthSettings(mode="oidc"), host)  # real identities may face a network


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.8.9.10"])
def test_dev_auth_serves_loopback(host: str) -> None:
    refuse_unsafe_dev_auth(AuthSettings(mode="dev", dev_secret=SecretStr(GOOD_SECRET)), host)


def test_vend_api_will_not_serve_dev_auth_on_all_interfaces() -> None:
    env = {"VEND_AUTH__MODE": "dev", "VEND_AUTH__DEV_SECRET": GOOD_SECRET}
    result = CliRunner().invoke(app, ["api", "--host", "0.0.0.0", "--port", "1"], env=env)
    assert result.exit_code != 0
    assert "ALLOW_INSECURE_DEV_AUTH" in result.output


def test_short_and_published_signing_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        check_dev_secret("too-short")
    with pytest.raises(ValueError, match="published"):
        TokenVerifier(
            AuthSettings(
                mode="dev", dev_secret=SecretStr("sandbox-only-token-signing-secret-32-bytes")
            )
        )
    assert check_dev_secret(GOOD_SECRET) == GOOD_SECRET


# ------------------------------------------------------------------ 11. the dev secret file
def test_the_dev_secret_file_is_created_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created 0600 in the call that creates it: no chmod afterwards to race with."""
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: None)
    old = os.umask(0)
    try:
        secret = ensure_dev_secret(AuthSettings(dev_secret_file=tmp_path / "d" / "dev-secret"))
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "d" / "dev-secret").stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert len(secret) >= 32


# ------------------------------------------------------------------ 14. JWKS over https
@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://login.example.com/jwks", True),
        ("http://127.0.0.1:8080/jwks", True),
        ("http://login.example.com/jwks", False),
        ("ftp://login.example.com/jwks", False),
    ],
)
def test_signing_keys_come_over_https(url: str, ok: bool) -> None:
    settings = AuthSettings(mode="oidc", jwks_url=url)
    if ok:
        TokenVerifier(settings)
    else:
        with pytest.raises(ValueError, match="https"):
            TokenVerifier(settings)


# ------------------------------------------------------------------ 4. path injection
@pytest.mark.parametrize("customer", ["../registrations", "x?y=1", "a/b", "c#d", "e f", "%2e%2e"])
def test_a_customer_id_cannot_name_another_path(api: Api, new_body: Body, customer: str) -> None:
    body = new_body()
    body["billing"] = {"customer_id": customer}
    got = api.create("alice", body)
    assert got.status_code == 422, got.text
    assert got.headers["content-type"] == "application/problem+json"


def test_the_http_clients_quote_every_path_parameter() -> None:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(404, json={"code": "unknown_customer"})

    http = httpx.Client(base_url="http://sunnypay.test/", transport=httpx.MockTransport(answer))
    billing = BillingActivities(http=http)
    billing.check_billing_customer(CustomerInput(customer_id="../registrations?all=1"))
    assert seen == [b"/v1/customers/..%2Fregistrations%3Fall%3D1"]
    assert path("computers/{id}", id="1/../2") == "computers/1%2F..%2F2"


# ------------------------------------------------------------------ 5, 6. email and webhooks
def test_a_webhook_needs_a_secret_and_smtp_credentials_need_tls() -> None:
    from common.settings import NotificationSettings

    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        NotificationSettings(webhook_url="https://hooks.example.com/vend")
    with pytest.raises(ValueError, match="WEBHOOK_SECRET"):
        NotificationSettings(webhook_url="https://hooks.example.com/vend", webhook_secret="")  # type: ignore[arg-type]
    NotificationSettings(webhook_url="https://hooks.example.com/vend", webhook_secret="k" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="STARTTLS"):
        NotificationSettings(smtp_host="mail.example.com", smtp_username="vend")
    NotificationSettings(smtp_host="mail.example.com", smtp_username="vend", smtp_starttls=True)


# ------------------------------------------------------------ 9. TLS and API keys for Temporal
def test_temporal_transport_settings(tmp_path: Path) -> None:
    from temporalio.service import TLSConfig

    from common.settings import TemporalSettings
    from common.temporal_client import transport

    assert transport(TemporalSettings()) == {"tls": False}  # loopback dev server
    cloud = transport(TemporalSettings(api_key=SecretStr("tc-key")))  # Temporal Cloud
    assert isinstance(cloud["tls"], TLSConfig) and cloud["api_key"] == "tc-key"
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "client.pem", "client.key"))
    for f in (ca, cert, key):
        f.write_bytes(b"-----BEGIN X-----\n" + f.name.encode() + b"\n-----END X-----\n")
    mtls = transport(
        TemporalSettings(
            tls_ca_file=ca,
            tls_cert_file=cert,
            tls_key_file=key,
            tls_server_name="temporal.internal",
        )
    )["tls"]
    assert mtls.server_root_ca_cert == ca.read_bytes()
    assert mtls.client_cert == cert.read_bytes() and mtls.client_private_key == key.read_bytes()
    assert mtls.domain == "temporal.internal"
    with pytest.raises(ValueError, match="in clear"):
        transport(TemporalSettings(api_key=SecretStr("tc-key"), tls=False))
    with pytest.raises(ValueError, match="both"):
        transport(TemporalSettings(tls_cert_file=cert))


async def test_tls_is_really_asked_of_the_server(stack: Any) -> None:
    """With TLS on, the plaintext dev server cannot be reached: the setting is not ignored."""
    from common.settings import CodecSettings, TemporalSettings
    from common.temporal_client import connect

    with pytest.raises(RuntimeError):
        await connect(
            TemporalSettings(address=stack.config.temporal_address, tls=True), CodecSettings()
        )


# ------------------------------------------------------------------ 12. terse errors
def _app(**auth: Any) -> Any:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from common.settings import TemporalSettings

    settings = Settings(
        auth=AuthSettings(**auth),
        temporal=TemporalSettings(address="127.0.0.1:1"),  # nothing listens there
    )
    return TestClient(create_app(settings))


def test_readyz_and_401_say_no_more_than_they_must_outside_dev() -> None:
    with _app(mode="oidc", jwks_url="http://127.0.0.1:1/jwks") as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["detail"] == "Temporal is not reachable"
        refused = client.get("/v1/account-requests", headers={"Authorization": "Bearer abc"})
        assert refused.status_code == 401
        assert refused.json()["detail"] == "the bearer token is not valid"
        assert client.get("/metrics").status_code == 404  # never on the port callers use
    with _app(mode="dev", dev_secret=SecretStr(GOOD_SECRET)) as client:
        explained = client.get("/v1/account-requests", headers={"Authorization": "Bearer abc"})
        assert explained.json()["detail"].startswith("the bearer token is not valid: ")


# ------------------------------------------------------------------ 13. CSP, CORS, HSTS
def _web_app(**web: Any) -> Any:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from common.settings import CodecSettings, TemporalSettings, WebSettings

    settings = Settings(
        auth=AuthSettings(mode="dev", dev_secret=SecretStr(GOOD_SECRET)),
        temporal=TemporalSettings(address="127.0.0.1:1"),
        codec=CodecSettings(ui_origins=["https://temporal.example.com"]),
        web=WebSettings(**web),
    )
    return TestClient(create_app(settings), base_url="https://vend.example.com")


def test_every_page_has_a_csp_that_names_only_this_origin_and_the_issuer() -> None:
    with _web_app() as client:
        csp = client.get("/").headers["content-security-policy"]
        assert "connect-src 'self';" in csp and "https:" not in csp.replace("'self'", "")
    with _web_app(
        oidc_client_id="vend",
        oidc_authorization_endpoint="https://login.example.com/auth",
        oidc_token_endpoint="https://login.example.com/token",
    ) as client:
        csp = client.get("/").headers["content-security-policy"]
        assert "connect-src 'self' https://login.example.com;" in csp
        assert "default-src 'self'" in client.get("/docs").headers["content-security-policy"]


def test_cors_answers_for_the_codec_only() -> None:
    preflight = {
        "Origin": "https://temporal.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with _web_app() as client:
        codec = client.options("/codec/decode", headers=preflight)
        assert codec.headers.get("access-control-allow-origin") == "https://temporal.example.com"
        api = client.options("/v1/account-requests", headers=preflight)
        assert "access-control-allow-origin" not in api.headers
        listed = client.get("/v1", headers={"Origin": "https://temporal.example.com"})
        assert "access-control-allow-origin" not in listed.headers


def test_hsts_over_tls_only() -> None:
    from fastapi.testclient import TestClient

    with _web_app() as client:
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")
        plain = TestClient(client.app, base_url="http://127.0.0.1:8000")
        assert "strict-transport-security" not in plain.get("/healthz").headers
