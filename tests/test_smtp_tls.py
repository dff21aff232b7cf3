"""Email credentials never travel in clear, and the relay's certificate is verified.

A real SMTP server (aiosmtpd) with STARTTLS and AUTH on loopback, its certificate from a private
CA: the engine refuses it until it is told to trust that CA, and never logs in without TLS.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import (
    NoticeBatch,
    Notification,
    NotificationActivities,
    SmtpConfig,
)
from sandbox.cluster.certs import make_certificates
from sandbox.stack import free_port


class Relay:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.logins: list[tuple[str, bool]] = []  # (user, over TLS)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode())
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append((data.login.decode(), server._tls_protocol is not None))
        return AuthResult(success=True)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, int, Path]]:
    made = make_certificates(tmp_path, clients=())  # a private CA and a loopback certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(made.server.cert, made.server.key)
    handler, port = Relay(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=False,
        authenticator=handler.authenticate,
        auth_require_tls=False,  # so that a login in clear would be seen, not refused
    )
    controller.start()
    yield handler, port, made.ca
    controller.stop()


def _note() -> Notification:
    return Notification(
        event="completed",
        request_id="r-1",
        account_name="team-a-prod",
        organizational_unit="Workloads/Prod",
        requested_by="alice",
        status="completed",
        at=datetime.datetime.now(datetime.UTC),
        requester_email="alice@example.com",
    )


def _mailer(port: int, **smtp: Any) -> NotificationActivities:
    config = SmtpConfig(host="127.0.0.1", port=port, sender="vend@example.com", **smtp)
    return NotificationActivities(http=None, webhook_url=None, secret=None, smtp=config)  # type: ignore[arg-type]


def test_an_unverified_relay_is_refused_before_any_credential(
    relay: tuple[Relay, int, Path],
) -> None:
    handler, port, _ = relay
    mailer = _mailer(port, starttls=True, username="vend", password="hunter2-hunter2")
    with pytest.raises(ApplicationError) as err:
        mailer.notify_email(_note())
    assert err.value.type == "EmailInsecure" and err.value.non_retryable
    assert "certificate" in err.value.message.lower()
    assert handler.logins == [] and handler.messages == []


def test_a_trusted_relay_gets_credentials_over_tls_only(relay: tuple[Relay, int, Path]) -> None:
    handler, port, cert_file = relay
    mailer = _mailer(
        port, starttls=True, username="vend", password="hunter2-hunter2", ca_file=str(cert_file)
    )
    assert mailer.notify_email(_note()).delivered
    assert handler.logins == [("vend", True)] and len(handler.messages) == 1


def test_credentials_without_tls_are_never_sent(relay: tuple[Relay, int, Path]) -> None:
    handler, port, _ = relay
    with pytest.raises(ApplicationError) as err:
        _mailer(port, starttls=False, username="vend", password="x").notify_email(_note())
    assert err.value.type == "EmailInsecure"
    assert handler.logins == [] and handler.messages == []


def test_a_batchs_mail_goes_over_one_verified_connection(relay: tuple[Relay, int, Path]) -> None:
    """A moment's notices (here three) are mailed over one connection: one STARTTLS and one
    login, not one per message."""
    handler, port, ca = relay
    mailer = _mailer(port, starttls=True, ca_file=str(ca), username="vend", password="x")
    notes = [_note().model_copy(update={"request_id": f"r-{i}"}) for i in range(3)]
    env = ActivityEnvironment()
    answers = env.run(mailer.deliver, NoticeBatch(notes=notes))
    assert [a.delivered for a in answers] == [False, True] * 3  # no webhook configured
    assert len(handler.messages) == 3
    assert handler.logins == [("vend", True)]
