"""Tell people when a request needs them: a JSON webhook signed with HMAC-SHA256.

Signature: ``X-Vend-Signature: sha256=<hex of HMAC(secret, body)>``, plus ``X-Vend-Event`` and
``X-Vend-Delivery`` (a stable id, so a receiver can drop a retried delivery it already has).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

import httpx
from pydantic import BaseModel
from temporalio import activity

from vending.activities.http_calls import call


class Notification(BaseModel):
    event: (
        str  # created | needs_approval | approved | rejected | completed | waiting_for_operator …
    )
    request_id: str
    account_name: str
    organizational_unit: str
    requested_by: str
    status: str
    at: datetime
    step: str | None = None
    error: str | None = None
    link: str | None = None


class Delivered(BaseModel):
    delivered: bool
    detail: str


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass
class NotificationActivities:
    http: httpx.Client
    webhook_url: str | None
    secret: bytes | None

    @activity.defn(name="notify")
    def notify(self, note: Notification) -> Delivered:
        if not self.webhook_url:
            return Delivered(delivered=False, detail="no webhook configured")
        body = json.dumps(note.model_dump(mode="json"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Vend-Event": note.event,
            "X-Vend-Delivery": f"{note.request_id}:{note.event}:{note.at.isoformat()}",
        }
        if self.secret:
            headers["X-Vend-Signature"] = sign(self.secret, body)
        resp = call(
            self.http, "POST", self.webhook_url, service="Webhook", content=body, headers=headers
        )
        return Delivered(delivered=resp.status_code < 300, detail=f"HTTP {resp.status_code}")
