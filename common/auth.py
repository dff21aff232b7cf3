"""Bearer tokens: minting for the embedded stack, verification for every API call.

``dev`` mode signs HS256 tokens with a local secret that ``vend dev`` creates under ``.data/``;
``oidc`` mode verifies the organization's tokens against its JWKS (keys cached by PyJWT and
refetched on an unknown key id, so rotation needs no restart).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import jwt

from common.models import Principal, Role
from common.settings import AuthSettings

DEV_ALGORITHM = "HS256"
MIN_DEV_SECRET_LENGTH = 32
# SHA-256 of signing secrets that were ever published (committed to this repository, e.g. in
# deploy/compose/*.env): anyone can mint tokens with them, so they are refused wherever they
# turn up. tests/test_hardening.py checks that every secret committed today is listed.
PUBLISHED_DEV_SECRETS = frozenset(
    {
        "50b8228dea8e26bf49fa7cb1f7e6532b469cef7fec77ea5d6ce82531de454b8c",  # compose demo, 2026-11
    }
)


class InvalidToken(Exception):
    """The token is missing, malformed, expired or not ours; the API answers 401."""


def ensure_dev_secret(settings: AuthSettings) -> str:
    """The dev signing secret, created on first use so a fresh clone needs no set-up.

    The file is created 0600 in the same call that creates it, so there is no moment in which
    another user of the machine could read it."""
    if settings.dev_secret is not None:
        return check_dev_secret(settings.dev_secret.get_secret_value())
    path: Path = settings.dev_secret_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secrets.token_urlsafe(32))
    return check_dev_secret(path.read_text(encoding="utf-8").strip())


def check_dev_secret(secret: str) -> str:
    """Refuse a signing secret that anyone could guess or has already read."""
    if len(secret) < MIN_DEV_SECRET_LENGTH:
        raise ValueError(
            f"the dev signing secret must be at least {MIN_DEV_SECRET_LENGTH} characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if hashlib.sha256(secret.encode()).hexdigest() in PUBLISHED_DEV_SECRETS:
        raise ValueError(
            "this dev signing secret was published (it is in the repository): make one"
        )
    return secret


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_unsafe_dev_auth(settings: AuthSettings, host: str) -> None:
    """Dev mode answers self-minted tokens: serve it on a loopback address only, unless the
    deployment asked for otherwise by name (``VEND_AUTH__ALLOW_INSECURE_DEV_AUTH``)."""
    if settings.mode == "dev" and not is_loopback(host) and not settings.allow_insecure_dev_auth:
        raise ValueError(
            f"dev auth mode would accept self-minted tokens on {host}: bind a loopback address, "
            "use VEND_AUTH__MODE=oidc, or set VEND_AUTH__ALLOW_INSECURE_DEV_AUTH=true"
        )


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
        "email_verified": True,  # the dev issuer vouches for the addresses it mints
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
            url = urlsplit(settings.jwks_url)
            if url.scheme != "https" and not (
                url.scheme == "http" and is_loopback(url.hostname or "")
            ):
                raise ValueError(
                    "VEND_AUTH__JWKS_URL must be https: signing keys fetched in clear can be "
                    "replaced on the way (plain http is accepted on loopback only)"
                )
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

    @property
    def explains_refusals(self) -> bool:
        """Dev mode tells callers why a token was refused; production keeps it in the log."""
        return self._settings.mode == "dev"

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
        if self._settings.require_email_verified and _claim(claims, "email_verified") is not True:
            # An address the issuer has not verified proves nothing: it grants no ownership
            # (rights and the owner filter go by email), and is not recorded as the caller's.
            email = None
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
