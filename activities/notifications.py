"""Tell people when a request needs them: a JSON webhook signed with HMAC-SHA256, and email.

Webhook signature: ``X-Vend-Timestamp: <unix seconds>`` and
``X-Vend-Signature: sha256=<hex of HMAC(secret, "<timestamp>." + body)>``, plus ``X-Vend-Event``
and ``X-Vend-Delivery`` (a stable id, so a receiver can drop a retried delivery it already has).
The timestamp is signed so that a captured delivery cannot be replayed later: receivers refuse
one whose timestamp is more than five minutes from their clock (``common.webhook_signature``,
which the sandbox's sink uses). Email carries the same stable id in its Message-ID: SMTP has no
idempotency, so a retried send may arrive twice, and mail systems that dedupe on Message-ID drop
the copy. Email goes over TLS with a verified certificate whenever it carries credentials.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.aws_errors import final
from activities.heartbeats import beat
from activities.http_calls import call
from common.webhook_signature import sign


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
    requester_email: str | None = None
    owner_email: str | None = None
    kind: str = "vend"  # vend | update | decommission | adopt | drift: what it is about
    cost: str | None = None  # the cost estimate in one line, for those who approve it


class Delivered(BaseModel):
    delivered: bool
    detail: str


class NoticeBatch(BaseModel):
    """The notices one workflow task decided (e.g. ``created`` and ``needs_approval`` as a
    request is filed), delivered by one activity on both channels."""

    notes: list[Notification]


CHANNELS = ("webhook", "email")


SUBJECTS = {
    "created": "request received",
    "needs_approval": "waiting for your approval",
    "approved": "approved, provisioning",
    "rejected": "rejected",
    "expired": "expired without enough approvals",
    "waiting_for_operator": "a step failed and waits for an operator",
    "completed": "your account is ready",
    "cancelled": "cancelled",
    "drift_detected": "drifted from what the inventory holds",
}


@dataclass
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # a private CA for the relay's certificate; else the system's
    approver_emails: tuple[str, ...] = ()
    operator_emails: tuple[str, ...] = ()
    page_url: str | None = None
    timeout_seconds: float = 10.0


def delivery_id(note: Notification) -> str:
    return f"{note.request_id}:{note.event}:{note.at.isoformat()}"


def recipients(note: Notification, smtp: SmtpConfig) -> list[str]:
    """Who this event matters to."""
    if note.event == "needs_approval":
        found = list(smtp.approver_emails)
    elif note.event in ("waiting_for_operator", "drift_detected"):
        found = list(smtp.operator_emails)
    else:
        found = [e for e in (note.requester_email, note.owner_email) if e]
    return sorted(set(found))


# A lease's events, in a leaseholder's words.
LEASE_SUBJECTS = {
    "requested": "sandbox lease received",
    "granted": "your sandbox is ready",
    "threshold": "your sandbox reached a threshold",
    "frozen": "your sandbox is frozen (reads only)",
    "ending_soon": "your sandbox ends within 24 hours",
    "ended": "your sandbox lease ended",
    "rejected": "your sandbox lease was rejected",
    "expired": "your sandbox lease expired without approval",
    "freeze_not_armed": "the budget freeze could not be armed",
}

# A change's own words where the vend's would mislead ("your account is ready" for a closure).
CHANGE_SUBJECTS = {"created": "received", "approved": "approved, running", "completed": "done"}


def subject(note: Notification) -> str:
    if note.kind == "lease":
        return LEASE_SUBJECTS.get(note.event, note.event.replace("_", " "))
    if note.kind in ("vend", "drift"):
        return SUBJECTS.get(note.event, note.event.replace("_", " "))
    what = CHANGE_SUBJECTS.get(note.event) or SUBJECTS.get(note.event, note.event)
    return f"{note.kind} {what.replace('_', ' ')}"


def compose(note: Notification, smtp: SmtpConfig, to: list[str]) -> EmailMessage:
    msg = EmailMessage()
    what = subject(note)
    msg["Subject"] = f"[account vending] {note.account_name}: {what}"
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    digest = hashlib.sha256(delivery_id(note).encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}@account-vending>"
    msg["X-Vend-Event"] = note.event
    asked = "Account request" if note.kind == "vend" else f"The {note.kind} request for"
    lines = [
        f"{asked} {note.account_name} ({note.organizational_unit}) is now "
        f"{note.status.replace('_', ' ')}.",
        "",
        f"Requested by: {note.requested_by}",
    ]
    if note.kind == "lease":
        lines = [
            f"Your sandbox lease ({note.organizational_unit}, account {note.account_name}) is now "
            f"{note.status.replace('_', ' ')}.",
            "",
            f"Lease: {note.request_id}",
        ]
    elif note.kind == "drift":
        lines = [f"Account {note.account_name} ({note.organizational_unit}) has drifted:", ""]
        lines += [f"  {part}" for part in (note.error or "").split("; ")]
    elif note.step:
        lines.append(f"Failed step: {note.step}")
    if note.error and note.kind == "lease":
        lines.append(f"Detail: {note.error}")
    elif note.error and note.kind != "drift":
        lines.append(f"Error: {note.error}")
    if note.cost:
        lines.append(f"Cost estimate: {note.cost}")
    if smtp.page_url and note.kind == "lease":
        lines += ["", f"Open it: {smtp.page_url.rstrip('/')}/#/leases/{note.request_id}"]
    elif smtp.page_url and note.kind != "drift":
        lines += ["", f"Open it: {smtp.page_url.rstrip('/')}/#/requests/{note.request_id}"]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def check_smtp(smtp: SmtpConfig) -> None:
    """Credentials never travel in clear: with a username, STARTTLS is required."""
    if smtp.username and not smtp.starttls:
        raise ValueError(
            "SMTP credentials need TLS: set VEND_NOTIFICATIONS__SMTP_STARTTLS=true "
            "(the relay's certificate is verified)"
        )


class MailSession:
    """One SMTP connection for the messages of a batch: opened at the first message, closed by
    the caller, opened again after a failure. A connection per message (its TCP handshake,
    EHLO, STARTTLS and login) was most of what mailing cost the worker."""

    def __init__(self, smtp: SmtpConfig) -> None:
        self.smtp = smtp
        self._server: smtplib.SMTP | None = None

    def send(self, note: Notification) -> Delivered:
        smtp = self.smtp
        to = recipients(note, smtp)
        if not to:
            return Delivered(delivered=False, detail=f"nobody to tell about {note.event}")
        msg = compose(note, smtp, to)
        try:
            check_smtp(smtp)
        except ValueError as err:
            raise final(str(err), "EmailInsecure") from err
        try:
            if self._server is None:
                self._server = self._open()
            self._server.send_message(msg)
        except ssl.SSLError as err:
            self.close()
            raise final(f"SMTP {smtp.host}: TLS refused: {err}", "EmailInsecure") from err
        except smtplib.SMTPRecipientsRefused as err:  # the connection stays usable
            raise final(f"SMTP refused every recipient: {err.recipients}", "EmailRefused") from err
        except (smtplib.SMTPException, OSError) as err:
            self.close()
            raise ApplicationError(f"SMTP {smtp.host}: {err}", type="EmailFailed") from err
        return Delivered(delivered=True, detail=f"mailed {len(to)} recipient(s)")

    def _open(self) -> smtplib.SMTP:
        smtp = self.smtp
        server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        try:
            if smtp.starttls:
                # Verified: the relay's certificate must chain to a trusted CA and name it.
                server.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
                if smtp.username and smtp.password:
                    server.login(smtp.username, smtp.password)
        except BaseException:
            server.close()
            raise
        return server

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            server.close()


@dataclass
class NotificationActivities:
    http: httpx.Client
    webhook_url: str | None
    secret: bytes | None
    smtp: SmtpConfig | None = None

    @activity.defn(no_thread_cancel_exception=True)
    def notify_email(self, note: Notification) -> Delivered:
        if self.smtp is None:
            return Delivered(delivered=False, detail="no SMTP server configured")
        session = MailSession(self.smtp)
        try:
            return session.send(note)
        finally:
            session.close()

    @activity.defn(no_thread_cancel_exception=True)
    def notify(self, note: Notification) -> Delivered:
        if not self.webhook_url:
            return Delivered(delivered=False, detail="no webhook configured")
        body = json.dumps(note.model_dump(mode="json"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Vend-Event": note.event,
            "X-Vend-Delivery": delivery_id(note),
        }
        if not self.secret:  # the worker refuses to start like this; never send unsigned
            raise final("webhook deliveries need a signing secret", "WebhookUnsigned")
        timestamp = int(time.time())
        headers["X-Vend-Timestamp"] = str(timestamp)
        headers["X-Vend-Signature"] = sign(self.secret, timestamp, body)
        resp = call(
            self.http, "POST", self.webhook_url, service="Webhook", content=body, headers=headers
        )
        return Delivered(delivered=resp.status_code < 300, detail=f"HTTP {resp.status_code}")

    @activity.defn(no_thread_cancel_exception=True)
    def deliver(self, batch: NoticeBatch) -> list[Delivered]:
        """Every notice of a workflow task, on every channel, in one activity, its mail over one
        connection: an activity per notice and channel (four for a request filed) cost the
        server and the worker about 12 ms of CPU each, a third of what filing a request cost.
        When a delivery fails, what went out (or was given up as final) is left in the
        heartbeat details before the attempt fails; Temporal hands them to the next attempt,
        which sends only the rest. (A worker lost mid-batch leaves none: its retry sends the
        batch again, and receivers drop what they have by its delivery id or Message-ID.)"""
        info = activity.info()
        done: set[str] = set(info.heartbeat_details[0]) if info.heartbeat_details else set()
        answers: list[Delivered] = []
        failed: list[str] = []
        mail = MailSession(self.smtp) if self.smtp is not None else None
        try:
            for i, note in enumerate(batch.notes):
                for name in CHANNELS:
                    key = f"{i}:{name}"
                    if key in done:
                        continue
                    try:
                        answers.append(self._one(name, note, mail))
                    except ApplicationError as err:
                        if not err.non_retryable:
                            failed.append(f"{note.event} by {name}: {err}")
                            continue
                        answers.append(Delivered(delivered=False, detail=f"{err.type}: {err}"))
                    except (httpx.HTTPError, OSError) as err:
                        failed.append(f"{note.event} by {name}: {err}")
                        continue
                    done.add(key)
        finally:
            if mail is not None:
                mail.close()
        if failed:
            beat(sorted(done))
            raise ApplicationError(
                f"{len(failed)} deliveries failed (the others went out): {'; '.join(failed)}",
                type="NotificationFailed",
            )
        return answers

    def _one(self, channel: str, note: Notification, mail: MailSession | None) -> Delivered:
        if channel == "webhook":
            return self.notify(note)
        if mail is None:
            return Delivered(delivered=False, detail="no SMTP server configured")
        return mail.send(note)
