"""The embedded stack's webhook receiver: checks each notification's signature, logs it and keeps
the last ``--keep`` so tests (and people) can see what would have been sent."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
from collections import deque
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("sandbox.webhooks")


def create_app(secret: bytes, keep: int) -> FastAPI:
    app = FastAPI(title="Notification sink (sandbox)")
    received: deque[dict[str, Any]] = deque(maxlen=keep)

    @app.post("/hooks")
    async def hook(request: Request) -> Any:
        body = await request.body()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, request.headers.get("X-Vend-Signature", ""))
        if not valid:
            return JSONResponse({"error": "bad signature"}, 401)
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

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5003)
    parser.add_argument("--keep", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s webhook %(message)s")
    secret = os.environ["WEBHOOK_SANDBOX_SECRET"].encode()
    uvicorn.run(create_app(secret, args.keep), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
