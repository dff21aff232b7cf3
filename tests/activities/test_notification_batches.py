"""One activity delivers a moment's notices on both channels; a retry sends only what did not
go out (its progress rides in the heartbeat details, which Temporal keeps across attempts)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.aws_errors import final
from activities.notifications import Delivered, NoticeBatch, Notification, NotificationActivities


@dataclasses.dataclass
class Channels(NotificationActivities):
    """The two channels replaced by ones that record what they sent and fail as told."""

    sent: list[str] = dataclasses.field(default_factory=list)
    refuse: dict[str, Exception] = dataclasses.field(default_factory=dict)

    def _send(self, channel: str, note: Notification) -> Delivered:
        key = f"{note.event} by {channel}"
        if (err := self.refuse.pop(key, None)) is not None:
            raise err
        self.sent.append(key)
        return Delivered(delivered=True, detail=channel)

    def _one(self, channel: str, note: Notification, mail: Any) -> Delivered:
        return self._send(channel, note)


def _batch(*events: str) -> NoticeBatch:
    at = datetime(2026, 12, 5, tzinfo=UTC)
    return NoticeBatch(
        notes=[
            Notification(
                event=e,
                request_id="r-1",
                account_name="a",
                organizational_unit="Workloads/SDLC",
                requested_by="alice",
                status="pending_approval",
                at=at,
            )
            for e in events
        ]
    )


def _attempt(channels: Channels, batch: NoticeBatch, details: Any = None) -> tuple[Any, list[Any]]:
    env = ActivityEnvironment()
    if details is not None:
        env.info = dataclasses.replace(env.info, heartbeat_details=[details], attempt=2)
    beats: list[Any] = []
    env.on_heartbeat = lambda *d: beats.append(d)
    try:
        return env.run(channels.deliver, batch), beats
    except ApplicationError as err:
        return err, beats


def _channels(**refuse: Exception) -> Channels:
    return Channels(http=httpx.Client(), webhook_url=None, secret=None, refuse=refuse)


def test_every_notice_goes_out_on_both_channels_in_one_activity() -> None:
    channels = _channels()
    answers, _ = _attempt(channels, _batch("created", "needs_approval"))
    assert channels.sent == [
        "created by webhook",
        "created by email",
        "needs_approval by webhook",
        "needs_approval by email",
    ]
    assert len(answers) == 4


def test_a_retry_sends_only_what_did_not_go_out() -> None:
    down = ApplicationError("Webhook POST: HTTP 503", type="WebhookUnavailable")
    channels = _channels(**{"needs_approval by webhook": down})
    failed, beats = _attempt(channels, _batch("created", "needs_approval"))
    assert isinstance(failed, ApplicationError) and not failed.non_retryable
    assert "needs_approval by webhook" in str(failed)
    # the others went out, and the last heartbeat says which
    assert channels.sent == ["created by webhook", "created by email", "needs_approval by email"]
    last = beats[-1][0]
    channels.sent.clear()
    answers, _ = _attempt(channels, _batch("created", "needs_approval"), details=last)
    assert channels.sent == ["needs_approval by webhook"]
    assert len(answers) == 1


def test_a_final_refusal_is_given_up_without_failing_the_others() -> None:
    insecure = final("SMTP credentials need TLS", "EmailInsecure")
    channels = _channels(**{"created by email": insecure})
    answers, beats = _attempt(channels, _batch("created"))
    assert channels.sent == ["created by webhook"]
    assert [a.delivered for a in answers] == [True, False]
    assert "EmailInsecure" in answers[1].detail
    assert beats == []  # nothing failed that a retry would send: no heartbeat at all


def test_a_final_refusal_is_not_sent_again_by_the_retry_of_another_failure() -> None:
    insecure = final("SMTP credentials need TLS", "EmailInsecure")
    down = ApplicationError("Webhook POST: HTTP 503", type="WebhookUnavailable")
    channels = _channels(**{"created by email": insecure, "created by webhook": down})
    failed, beats = _attempt(channels, _batch("created"))
    assert isinstance(failed, ApplicationError)
    assert beats[-1][0] == ["0:email"]  # given up, so the retry leaves it alone
    channels.refuse["created by email"] = insecure  # it would be refused again
    answers, _ = _attempt(channels, _batch("created"), details=beats[-1][0])
    assert channels.sent == ["created by webhook"] and len(answers) == 1


@pytest.mark.parametrize("err", [httpx.ConnectError("refused"), OSError("network down")])
def test_a_transport_failure_is_retried_by_temporal(err: Exception) -> None:
    channels = _channels(**{"created by email": err})
    failed, _ = _attempt(channels, _batch("created"))
    assert isinstance(failed, ApplicationError) and not failed.non_retryable
