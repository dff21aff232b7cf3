"""Production identity: tokens from an OIDC issuer verified against its JWKS.

A local JWKS server serves keys made here; it counts fetches, so caching and rotation are
observable. The last test starts an API process in oidc mode beside the suite's stack.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from common.auth import InvalidToken, TokenVerifier
from common.models import Role
from common.settings import AuthSettings
from sandbox.stack import EmbeddedStack, free_port
from tests.waiting import wait_until

ISSUER = "https://login.example.com/realms/platform"
AUDIENCE = "account-vending"


class Issuer:
    """Signing keys and a JWKS endpoint, like an identity provider's."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        self.rotate()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.fetches += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/protocol/openid-connect/certs"

    def rotate(self, kind: str = "rsa") -> str:
        kid = f"key-{len(self.keys) + 1}"
        if kind == "rsa":
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        self.current = kid
        return kid

    def retire(self, kid: str) -> None:
        del self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            algo = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig")
            out.append(jwk)
        return {"keys": out}

    def token(self, kid: str | None = None, **claims: Any) -> str:
        kid = kid or self.current
        key = self.keys[kid]
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "email": "user-1@example.com",
            "email_verified": True,  # as Keycloak, Entra ID and Okta send it
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": ["requester"]},
            "groups": ["/platform/approvers"],
            **claims,
        }
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(
            {k: v for k, v in body.items() if v is not None}, key, alg, headers={"kid": kid}
        )

    def settings(self, **overrides: Any) -> AuthSettings:
        values: dict[str, Any] = {
            "mode": "oidc",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwks_url": self.url,
            "leeway_seconds": 10,
            "roles_claim": "realm_access.roles",
            "groups_claim": "groups",
            "group_roles": {"/platform/approvers": ["approver"], "/platform/ops": ["operator"]},
        }
        return AuthSettings(**{**values, **overrides})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    idp = Issuer()
    yield idp
    idp.server.shutdown()


def test_valid_token_maps_claims_and_groups_onto_roles(issuer: Issuer) -> None:
    principal = TokenVerifier(issuer.settings()).verify(issuer.token())
    assert principal.sub == "user-1"
    assert principal.email == "user-1@example.com"
    assert principal.roles == [Role.requester, Role.approver]


def test_keys_are_cached_and_a_rotation_is_honoured(issuer: Issuer) -> None:
    verifier = TokenVerifier(issuer.settings(jwks_refresh_cooldown_seconds=0.5))
    for _ in range(5):
        verifier.verify(issuer.token())
    assert issuer.fetches == 1
    old = issuer.current
    issuer.rotate("ec")  # the issuer rotates to a new key (another algorithm, too)

    def verified() -> bool:  # an unknown kid refetches the JWKS once the cooldown has passed
        try:
            return verifier.verify(issuer.token()).sub == "user-1"
        except InvalidToken:
            return False

    wait_until(verified, "the rotated key accepted after the refetch cooldown", timeout=10)
    assert issuer.fetches == 2  # the unknown kid refetched the JWKS once
    issuer.retire(old)
    verifier.verify(issuer.token())
    assert issuer.fetches == 2


def test_made_up_key_ids_do_not_flood_the_issuer(issuer: Issuer) -> None:
    verifier = TokenVerifier(issuer.settings(jwks_refresh_cooldown_seconds=60))
    verifier.verify(issuer.token())
    stranger = Issuer()
    try:
        for _ in range(20):
            stranger.rotate()
            with pytest.raises(InvalidToken):
                verifier.verify(stranger.token())
    finally:
        stranger.server.shutdown()
    assert issuer.fetches == 1  # within the cooldown, unknown kids are refused from the cache


# Times as offsets from now, resolved when the test runs (not at collection, minutes earlier).
@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"aud": "another-app"}, "(?i)audience"),
        ({"exp": -60}, "expired"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"nbf": 120}, "not yet valid"),
    ],
)
def test_claims_are_enforced(issuer: Issuer, claims: dict[str, Any], reason: str) -> None:
    now = int(time.time())
    resolved = {
        k: now + v if k in ("exp", "nbf") and isinstance(v, int) else v for k, v in claims.items()
    }
    verifier = TokenVerifier(issuer.settings())
    with pytest.raises(InvalidToken, match=reason):
        verifier.verify(issuer.token(**resolved))


def test_clock_skew_is_tolerated_only_within_the_leeway(issuer: Issuer) -> None:
    verifier = TokenVerifier(issuer.settings(leeway_seconds=10))
    assert verifier.verify(issuer.token(exp=int(time.time()) - 5)).sub == "user-1"
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(issuer.token(exp=int(time.time()) - 30))
    with pytest.raises(ValueError, match="less than or equal to 300"):
        issuer.settings(leeway_seconds=3600)


def test_forged_and_unknown_keys_are_refused(issuer: Issuer) -> None:
    verifier = TokenVerifier(issuer.settings())
    stranger = Issuer()  # same claims, signed with a key the issuer never published
    try:
        with pytest.raises(InvalidToken):
            verifier.verify(stranger.token(kid=stranger.current))
    finally:
        stranger.server.shutdown()
    hs = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
        "a-shared-secret-of-at-least-32-bytes!",
        "HS256",
        headers={"kid": issuer.current},
    )
    with pytest.raises(InvalidToken):
        verifier.verify(hs)  # algorithm confusion: HS256 with the RSA key id


def test_unknown_roles_in_the_group_mapping_are_a_configuration_error(issuer: Issuer) -> None:
    with pytest.raises(ValueError, match="superuser"):
        TokenVerifier(issuer.settings(group_roles={"/g": ["superuser"]}))


def test_an_api_in_oidc_mode_accepts_the_issuers_tokens_only(
    issuer: Issuer, stack: EmbeddedStack, tokens: dict[str, str]
) -> None:
    port = free_port()
    env = {
        "VEND_AUTH__MODE": "oidc",
        "VEND_AUTH__ISSUER": ISSUER,
        "VEND_AUTH__AUDIENCE": AUDIENCE,
        "VEND_AUTH__JWKS_URL": issuer.url,
        "VEND_AUTH__ROLES_CLAIM": "realm_access.roles",
        "VEND_AUTH__GROUPS_CLAIM": "groups",
        "VEND_AUTH__GROUP_ROLES": json.dumps({"/platform/ops": ["operator"]}),
    }
    proc = stack.start_api("api-oidc", port, env)
    try:
        url = f"http://127.0.0.1:{port}/v1/account-requests"
        ops = issuer.token(sub="olga", groups=["/platform/ops"], realm_access={"roles": []})
        assert httpx.get(url, headers={"Authorization": f"Bearer {ops}"}).status_code == 200
        # A dev token (the embedded stack's HS256) means nothing to this deployment.
        dev = httpx.get(url, headers={"Authorization": f"Bearer {tokens['frank']}"})
        assert dev.status_code == 401
        assert dev.headers["content-type"] == "application/problem+json"
        expired = issuer.token(exp=int(time.time()) - 3600)
        assert httpx.get(url, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    finally:
        proc.stop()
