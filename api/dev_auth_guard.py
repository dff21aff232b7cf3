"""Dev auth answers self-minted tokens, so it serves loopback only, however the app is started.

``vend api`` refuses a non-loopback bind before it starts, but the app can be served by any ASGI
server (``uvicorn api.app:create_app --factory --host 0.0.0.0``) and the bind address never
reaches the app. What does reach it is the local address each connection came in on (the ASGI
``server``): a request that arrived on a non-loopback interface is refused before any route
sees its token, unless the deployment asked for it by name
(``VEND_AUTH__ALLOW_INSECURE_DEV_AUTH``).
"""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from common.auth import is_loopback
from common.settings import AuthSettings

REFUSAL = (
    "dev auth mode accepts self-minted tokens, so it answers only on a loopback address: use "
    "VEND_AUTH__MODE=oidc, or set VEND_AUTH__ALLOW_INSECURE_DEV_AUTH=true"
)


def _network_address(host: str) -> bool:
    """An IP address that is not loopback (a name is a test client's or a unix socket's)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not is_loopback(host)


class DevAuthLoopbackOnly:
    def __init__(self, app: ASGIApp, auth: AuthSettings) -> None:
        self.app = app
        self.active = auth.mode == "dev" and not auth.allow_insecure_dev_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] == "http" else None
        if self.active and server and server[0] and _network_address(str(server[0])):
            body = json.dumps(
                {"type": "about:blank", "title": "Forbidden", "status": 403, "detail": REFUSAL}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
