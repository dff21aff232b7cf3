"""Cleaning a pool account after its lease: the cleaner, then an inventory of its own.

The cleaner is aws-nuke (the maintained fork, v3), run with the account's temporary credentials
and a configuration written for this run: every region enabled in the account plus the pool's
(ISB #148: a fixed region list left whole regions uncleaned), the engine's own resources
filtered out (the member role, Control Tower's and the StackSets' roles and stacks), the
management account on the blocklist. Each run has a time limit, and the runs are bounded
(ISB #101: cleaning that looped for days).

Success is never the cleaner's word (ISB #160 reported success over resources that survived):
after every run an inventory lists what is left in every region it cleaned, through the
services' own list calls; the account is clean when that list is empty. The inventory knows
fewer resource types than aws-nuke; what it knows, it checks everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError
from temporalio import activity

from activities.account_settings import AccountSettingsActivities
from activities.aws_errors import to_application_error
from activities.heartbeats import beat
from activities.member_accounts import MemberAccountAccess
from common.leases import CleaningResult, CleaningRun


def with_parent(argv: list[str]) -> list[str]:
    """The cleaner killed when the worker dies (util-linux's setpriv, where there is one): a
    worker killed mid-cleaning must not leave a cleaner running beside the one its retry
    starts (one cleaning of an account at a time). preexec_fn would do it in Python, but is
    not safe in a process with threads, which a worker is."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


# Kept: what the engine and Control Tower put in every account (aws-nuke filter syntax).
_STACK_PREFIXES = ("StackSet-", "AWSControlTowerBP-")
BEAT_SECONDS = 2.0  # heartbeats while the cleaner runs


def nuke_config(
    account_id: str, management_account: str, regions: list[str], engine_roles: list[str]
) -> dict[str, Any]:
    """aws-nuke v3's configuration for one account."""
    role_filters = [{"type": "glob", "value": role} for role in engine_roles]
    return {
        "regions": ["global", *regions],
        "blocklist": [management_account],
        "bypass-alias-check-accounts": [account_id],
        "accounts": {
            account_id: {
                "filters": {
                    "IAMRole": role_filters,
                    "IAMRolePolicyAttachment": [
                        {"property": "RoleName", "type": "glob", "value": role}
                        for role in engine_roles
                    ],
                    "CloudFormationStack": [
                        {"type": "glob", "value": f"{prefix}*"} for prefix in _STACK_PREFIXES
                    ],
                }
            }
        },
    }


@dataclass
class AccountCleaning:
    members: MemberAccountAccess
    account_settings: AccountSettingsActivities
    command: list[str]
    engine_roles: list[str]  # the member role is added to these
    passes: int = 3
    timeout_seconds: float = 3600.0
    endpoint_url: str | None = None  # the sandbox's, passed on to the cleaner; unset on AWS

    @activity.defn(no_thread_cancel_exception=True)
    def clean_account(self, run: CleaningRun) -> CleaningResult:
        try:
            regions = sorted(
                set(run.regions) | set(self.account_settings.enabled_regions(run.account_id))
            )
            failed: str | None = None
            left: list[str] = []
            for n in range(1, min(run.passes, self.passes) + 1):
                beat(f"pass {n}")
                failed = self._run_cleaner(run, regions)
                left = self.inventory(run.account_id, regions)
                if not left:
                    return CleaningResult(regions=regions, passes=n, left_behind=[])
            return CleaningResult(
                regions=regions, passes=n, left_behind=left, cleaner_failed=failed
            )
        except ClientError as err:
            raise to_application_error(err, action=f"cleaning {run.account_id}") from err

    def _run_cleaner(self, run: CleaningRun, regions: list[str]) -> str | None:
        """One cleaner run; what it said when it failed (its last lines), else None."""
        roles = [self.members.role_name, *self.engine_roles]
        management = self.members.management_account_id()
        config = nuke_config(run.account_id, management, regions, roles)
        creds = self.members.credentials(run.account_id, f"vend-clean-{run.run}")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
            "AWS_DEFAULT_REGION": regions[0] if regions else "us-east-1",
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        with tempfile.TemporaryDirectory(prefix="vend-clean-") as folder:
            path = Path(folder) / "nuke-config.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
            argv = [*self.command, "run", "--config", str(path), "--no-dry-run", "--no-prompt"]
            return self._run(with_parent([*argv, "--no-alias-check", "--log-format", "json"]), env)

    def _run(self, argv: list[str], env: dict[str, str]) -> str | None:
        """Run the cleaner to its end, heartbeating while it works (a run can take many
        minutes); past the time limit it is killed."""
        deadline = time.monotonic() + self.timeout_seconds
        with subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            while True:
                try:
                    out, err = proc.communicate(timeout=BEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        proc.kill()
                        proc.communicate()
                        return f"the cleaner ran past its limit of {self.timeout_seconds:.0f} s"
                    beat("cleaner running")
        if proc.returncode == 0:
            return None
        lines = (err or out).strip().splitlines()
        said = [line for line in lines if "failed:" in line][-5:] or lines[-3:]
        return f"the cleaner exited {proc.returncode}: " + " | ".join(said)

    # ------------------------------------------------------------------ the inventory
    def inventory(self, account_id: str, regions: list[str]) -> list[str]:
        """What is left, as "<region> <type> <id>", through each service's own list calls."""
        creds = self.members.credentials(account_id, "vend-inventory")
        found: list[str] = []
        for region in regions:
            beat(f"inventory {region}")
            clients: dict[str, Any] = {}
            for kind, (service, lister) in LISTERS:
                if service not in clients:
                    clients[service] = self.members.client_from(creds, service, region)
                found += [f"{region} {kind} {rid}" for rid in lister(clients[service])]
        s3 = self.members.client_from(creds, "s3")
        for bucket in s3.list_buckets().get("Buckets", []):
            found.append(f"global S3Bucket {bucket['Name']}")
        return sorted(found)


def _instances(ec2: Any) -> Iterator[str]:
    live = ["pending", "running", "stopping", "stopped"]
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": live}]
    )
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                yield str(instance["InstanceId"])


def _vpcs(ec2: Any) -> Iterator[str]:
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"]:
        yield str(vpc["VpcId"])


def _queues(sqs: Any) -> Iterator[str]:
    for url in sqs.list_queues().get("QueueUrls", []):
        yield str(url).rsplit("/", 1)[-1]


def _topics(sns: Any) -> Iterator[str]:
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page["Topics"]:
            yield str(topic["TopicArn"]).rsplit(":", 1)[-1]


def _tables(dynamodb: Any) -> Iterator[str]:
    for page in dynamodb.get_paginator("list_tables").paginate():
        yield from (str(t) for t in page["TableNames"])


# The inventory's resource types: (aws-nuke's name for it, (service, lister)).
LISTERS: list[tuple[str, tuple[str, Callable[[Any], Iterator[str]]]]] = [
    ("EC2Instance", ("ec2", _instances)),
    ("EC2VPC", ("ec2", _vpcs)),
    ("SQSQueue", ("sqs", _queues)),
    ("SNSTopic", ("sns", _topics)),
    ("DynamoDBTable", ("dynamodb", _tables)),
]
