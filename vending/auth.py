"""Bearer tokens: minting for the embedded stack, verification for every API call.

``dev`` mode signs HS256 tokens with a local secret that ``vend dev`` creates under ``.data/``;
``oidc`` mode verifies the organization's tokens against its JWKS (keys cached by PyJWT and
refetched on an unknown key id, so rotation needs no restart).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import jwt

from vending.models import Principal, Role
from vending.settings import AuthSettings

DEV_ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, expired or not ours; the API answers 401."""


def ensure_dev_secret(settings: AuthSettings) -> str:
    """The dev signing secret, created on first use so a fresh clone needs no set-up."""
    if settings.dev_secret is not None:
        return settings.dev_secret.get_secret_value()
    path: Path = settings.dev_secret_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def mint_dev_token(
    settings: AuthSettings,
    sub: str,
    roles: list[Role],
    email: str | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    now = int(time.time())
    claims = {
        "sub": sub,
        "email": email or f"{sub}@example.com",
        "roles": [r.value for r in roles],
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, ensure_dev_secret(settings), algorithm=DEV_ALGORITHM)


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._dev_secret: str | None = None
        if settings.mode == "oidc":
            if not settings.jwks_url:
                raise ValueError("VEND_AUTH__JWKS_URL is required when VEND_AUTH__MODE=oidc")
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300)
        elif settings.mode == "dev":
            self._dev_secret = ensure_dev_secret(settings)
        else:
            raise ValueError(f"unknown auth mode {settings.mode!r} (dev or oidc)")

    def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256", "ES256", "PS256", "EdDSA"]
            else:
                key, algorithms = self._dev_secret, [DEV_ALGORITHM]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as err:
            raise InvalidToken(str(err)) from err
        roles_claim = claims.get("roles", [])
        if not isinstance(roles_claim, list):
            raise InvalidToken("the roles claim must be a list")
        known = {r.value for r in Role}
        return Principal(
            sub=str(claims["sub"]),
            email=claims.get("email"),
            roles=[Role(r) for r in roles_claim if r in known],
        )
