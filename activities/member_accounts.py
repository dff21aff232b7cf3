"""Clients inside a member account, through the role that CreateAccount made there.

STS credentials last an hour; each activity attempt assumes the role afresh, so a long step never
runs on expired credentials (AFT's one-hour session limit, AFT #645).

The clients come from one botocore session for the whole process: a new boto3 Session per
client loads and parses the service model again, about 66 ms of CPU each against 5 ms from a
shared session (measured on the development machine), and under load that was most of the
Control Tower step's time before its slot (bench/quota).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from temporalio import activity

from activities.aws_errors import error_code
from activities.heartbeats import keepalive, pause


@dataclass
class MemberAccountAccess:
    sts: Any
    role_name: str
    config: Config
    _session: botocore.session.Session = field(default_factory=botocore.session.get_session)
    # botocore sessions are not documented as thread-safe: clients are made one at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # AWS: "you might need to wait a few minutes" before a new account's execution role can be
    # assumed. AccessDenied from AssumeRole is waited out this long (heartbeating) before it
    # reaches the step as the final answer it is for an account that has no such role.
    role_wait_seconds: float = 600.0

    def client(
        self,
        account_id: str,
        service: str,
        session_name: str = "account-vending",
        region: str | None = None,
        *,
        role_wait_seconds: float | None = None,
    ) -> Any:
        """``role_wait_seconds``: how long to wait out AccessDenied (default: the setting); 0
        for an account that is not new (an adoption's), where it means the role is missing."""
        creds = self._assume(account_id, session_name, role_wait_seconds)
        return self.client_from(creds, service, region)

    def client_from(self, creds: Any, service: str, region: str | None = None) -> Any:
        """A client on credentials assumed once (many regions' clients, one AssumeRole)."""
        config = self.config.merge(Config(region_name=region)) if region else self.config
        with self._lock:
            client: Any = self._session.create_client(
                service,
                config=config,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        client.meta.events.register("before-send", keepalive)
        return client

    def credentials(self, account_id: str, session_name: str = "account-vending") -> Any:
        """The role's temporary credentials, for a tool run outside boto3 (the cleaner)."""
        return self._assume(account_id, session_name, 0)

    def _assume(self, account_id: str, session_name: str, wait: float | None) -> Any:
        role = f"arn:aws:iam::{account_id}:role/{self.role_name}"
        deadline = time.monotonic() + (self.role_wait_seconds if wait is None else wait)
        delay = 1.0
        while True:
            try:
                return self.sts.assume_role(
                    RoleArn=role, RoleSessionName=session_name[:64], DurationSeconds=3600
                )["Credentials"]
            except ClientError as err:
                left = deadline - time.monotonic()
                if error_code(err) != "AccessDenied" or left <= 0:
                    raise
                what = f"{role} to become assumable (a new account's role can take minutes)"
                if activity.in_activity():
                    pause(min(delay, left), waiting_for=what)
                else:
                    time.sleep(min(delay, left))
                delay = min(delay * 2, 15.0)

    def management_account_id(self) -> str:
        return str(self.sts.get_caller_identity()["Account"])
