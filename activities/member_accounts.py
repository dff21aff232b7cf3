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
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.config import Config

from activities.heartbeats import keepalive


@dataclass
class MemberAccountAccess:
    sts: Any
    role_name: str
    config: Config
    _session: botocore.session.Session = field(default_factory=botocore.session.get_session)
    # botocore sessions are not documented as thread-safe: clients are made one at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(
        self,
        account_id: str,
        service: str,
        session_name: str = "account-vending",
        region: str | None = None,
    ) -> Any:
        creds = self.sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{self.role_name}",
            RoleSessionName=session_name[:64],
            DurationSeconds=3600,
        )["Credentials"]
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

    def management_account_id(self) -> str:
        return str(self.sts.get_caller_identity()["Account"])
