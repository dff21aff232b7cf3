"""The embedded stack's notification sink: a webhook receiver and an SMTP server.

Webhook deliveries have their signature checked; both kinds are logged and the last ``--keep``
of each kept, so tests (and people, at ``/mail`` and ``/hooks``) see what would have been sent.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
from collections import deque
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from common.webhook_signature import verify

log = logging.getLogger("sandbox.webhooks")


class MailBox:
    """aiosmtpd handler: keeps each message as a dict (headers, text, recipients)."""

    def __init__(self, keep: int) -> None:
        self.messages: deque[dict[str, Any]] = deque(maxlen=keep)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=email_policy.default)
        body = msg.get_body(preferencelist=("plain",))
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(msg["Subject"]),
                "message_id": str(msg["Message-ID"]),
                "event": str(msg["X-Vend-Event"]),
                "text": body.get_content() if body is not None else "",
                "received_at": datetime.now(UTC).isoformat(),
            }
        )
        log.warning("mail to %s: %s", ", ".join(envelope.rcpt_tos), msg["Subject"])
        return "250 Message accepted for delivery"


def _mail_page(messages: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<article><h2>{}</h2><p>To: {} · {}</p><pre>{}</pre></article>".format(
            html.escape(m["subject"]),
            html.escape(", ".join(m["to"])),
            html.escape(m["received_at"]),
            html.escape(m["text"]),
        )
        for m in reversed(messages)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Mail the engine sent (sandbox)</title></head><body>"
        "<h1>Mail the engine would have sent</h1>"
        f"{rows or '<p>No mail yet.</p>'}</body></html>"
    )


def create_app(secret: bytes, keep: int, mailbox: MailBox | None = None) -> FastAPI:
    app = FastAPI(title="Notification sink (sandbox)")
    received: deque[dict[str, Any]] = deque(maxlen=keep)
    seen: deque[str] = deque(maxlen=10_000)  # signatures within the replay window
    box = mailbox or MailBox(keep)
    failing = {"left": 0}  # deliveries still to refuse with a 503 (fault injection)

    @app.post("/_sandbox/fail-next")
    async def fail_next(request: Request) -> Any:
        """Refuse the next ``times`` deliveries with 503, as a receiver that is down would."""
        failing["left"] = int((await request.json()).get("times", 1))
        return {"failing": failing["left"]}

    @app.post("/hooks")
    async def hook(request: Request) -> Any:
        """Checks a delivery the way a receiver should: signature over ``timestamp.body``,
        timestamp within five minutes, and a delivery id not seen before (a replay)."""
        body = await request.body()
        if failing["left"] > 0:
            failing["left"] -= 1
            return JSONResponse({"error": "unavailable (injected)"}, 503)
        timestamp = request.headers.get("X-Vend-Timestamp", "")
        if not verify(secret, timestamp, request.headers.get("X-Vend-Signature", ""), body):
            return JSONResponse({"error": "bad signature or stale timestamp"}, 401)
        signature = request.headers["X-Vend-Signature"]
        if signature in seen:
            return JSONResponse({"error": "replayed delivery"}, 409)
        seen.append(signature)
        note = json.loads(body)
        note["_delivery"] = request.headers.get("X-Vend-Delivery")
        received.append(note)
        log.warning(
            "notification %s: request %s is %s%s",
            note["event"],
            note["request_id"],
            note["status"],
            f" ({note['step']}: {note['error']})" if note.get("error") else "",
        )
        return {"received": True}

    @app.get("/hooks")
    def hooks() -> Any:
        return {"items": list(received)}

    @app.get("/mail.json")
    def mail_json() -> Any:
        return {"items": list(box.messages)}

    @app.get("/mail", response_class=HTMLResponse)
    def mail_page() -> str:
        return _mail_page(list(box.messages))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5003)
    parser.add_argument("--keep", type=int, default=200)
    parser.add_argument("--smtp-port", type=int, default=5025)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s notify %(message)s")
    secret = os.environ["WEBHOOK_SANDBOX_SECRET"].encode()
    mailbox = MailBox(args.keep)
    smtp = Controller(mailbox, hostname=args.host, port=args.smtp_port)
    smtp.start()
    try:
        uvicorn.run(
            create_app(secret, args.keep, mailbox),
            host=args.host,
            port=args.port,
            log_level="warning",
        )
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
