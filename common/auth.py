"""Bearer tokens: minting for the embedded stack, verification for every API call.

``dev`` mode signs HS256 tokens with a local secret that ``vend dev`` creates under ``.data/``;
``oidc`` mode verifies the organization's tokens against its JWKS (keys cached by PyJWT and
refetched on an unknown key id, so rotation needs no restart).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import jwt

from common.models import Principal, Role
from common.settings import AuthSettings

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
        known = {r.value for r in Role}
        unknown = {r for roles in settings.group_roles.values() for r in roles} - known
        if unknown:
            raise ValueError(f"VEND_AUTH__GROUP_ROLES names unknown roles: {sorted(unknown)}")
        if settings.mode == "oidc":
            if not settings.jwks_url:
                raise ValueError("VEND_AUTH__JWKS_URL is required when VEND_AUTH__MODE=oidc")
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url,
                cache_keys=True,
                cache_jwk_set=True,
                lifespan=settings.jwks_cache_seconds,
                cooldown_duration=settings.jwks_refresh_cooldown_seconds,
                timeout=10,
            )
        elif settings.mode == "dev":
            self._dev_secret = ensure_dev_secret(settings)
        else:
            raise ValueError(f"unknown auth mode {settings.mode!r} (dev or oidc)")

    def verify(self, token: str) -> Principal:
        """Verify signature, issuer, audience and lifetime; map claims onto a principal.

        Blocking on a JWKS fetch (first use, rotation, cache expiry): async callers run it in
        a thread (``averify``).
        """
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
        email = _claim(claims, self._settings.email_claim)
        return Principal(
            sub=str(claims["sub"]),
            email=str(email) if email else None,
            roles=self._roles(claims),
        )

    async def averify(self, token: str) -> Principal:
        if self._jwks is None:
            return self.verify(token)
        return await anyio.to_thread.run_sync(self.verify, token)

    def _roles(self, claims: dict[str, Any]) -> list[Role]:
        names: list[str] = []
        direct = _claim(claims, self._settings.roles_claim)
        if direct is not None:
            if not isinstance(direct, list):
                raise InvalidToken(f"the {self._settings.roles_claim} claim must be a list")
            names += [str(r) for r in direct]
        if self._settings.groups_claim:
            groups = _claim(claims, self._settings.groups_claim) or []
            if not isinstance(groups, list):
                raise InvalidToken(f"the {self._settings.groups_claim} claim must be a list")
            for group in groups:
                names += self._settings.group_roles.get(str(group), [])
        known = {r.value for r in Role}
        return [Role(r) for r in dict.fromkeys(names) if r in known]


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); None where any part is missing."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
