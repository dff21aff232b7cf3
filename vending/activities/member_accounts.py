"""Clients inside a member account, through the role that CreateAccount made there.

STS credentials last an hour; each activity attempt assumes the role afresh, so a long step never
runs on expired credentials (AFT's one-hour session limit, AFT #645).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from vending.activities.heartbeats import keepalive


@dataclass
class MemberAccountAccess:
    sts: Any
    role_name: str
    config: Config

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
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        make: Any = session.client
        config = self.config.merge(Config(region_name=region)) if region else self.config
        client = make(service, config=config)
        client.meta.events.register("before-send", keepalive)
        return client

    def management_account_id(self) -> str:
        return str(self.sts.get_caller_identity()["Account"])
