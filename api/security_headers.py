"""Headers every response of the API carries, decided in one place.

- Every HTML response gets a Content-Security-Policy (one that a route set itself, like the
  documentation pages', is kept): scripts and styles only from this origin, and the browser may
  talk to this origin and to the configured OIDC issuer's token endpoint, no other host.
- CORS (with credentials) applies to ``/codec`` only, for the Temporal UI's origin: no other
  route answers a cross-origin browser call.
- Over TLS (the scheme uvicorn sees, ``X-Forwarded-Proto`` from a trusted proxy included),
  ``Strict-Transport-Security``, so a browser never comes back in clear.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.settings import Settings

HSTS = b"max-age=31536000; includeSubDomains"
CODEC_PREFIX = "/codec"


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        return None  # only an https issuer may be named in the policy
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    web = settings.web
    issuers = sorted(
        {
            o
            for o in (
                _origin(web.oidc_token_endpoint),
                _origin(web.oidc_authorization_endpoint),
                _origin(settings.auth.issuer),
            )
            if o
        }
    )
    connect = " ".join(["'self'", *issuers])
    return (
        f"default-src 'self'; connect-src {connect}; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.csp = content_security_policy(settings).encode()
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.codec.ui_origins,
            allow_credentials=True,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if (
                    content_type.startswith(b"text/html")
                    and b"content-security-policy" not in names
                ):
                    headers.append((b"content-security-policy", self.csp))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if tls:
                    headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
            await send(message)

        inner = self.cors if scope["path"].startswith(CODEC_PREFIX) else self.app
        await inner(scope, receive, with_headers)
