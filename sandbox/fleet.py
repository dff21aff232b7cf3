"""A fleet of accounts made straight in the sandbox, as a landing zone that has run for years has.

Accounts in an OU with a baseline StackSet's instances, created through the AWS APIs (not vended
one by one): what the rollout tests and the rollout benchmark start from. Creations run a few at
a time; the instances are one CreateStackInstances for the whole fleet, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError
from temporalio.common import WorkflowIDConflictPolicy

from common import account_contract
from common import search_attributes as sa
from common.managed_account_input import ManagedAccountInput
from common.models import AccountRequest, ManagedAccount

T = TypeVar("T")
STACK_SET_EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"


def client(endpoint: str, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=16),
    )


def until(ready: Callable[[], T | None], what: str, timeout: float = 600) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = ready()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"never reached: {what}")
        time.sleep(0.2)


def ou_id(org: Any, path: str) -> str:
    parent = org.list_roots()["Roots"][0]["Id"]
    for name in path.split("/"):
        ous = org.list_organizational_units_for_parent(ParentId=parent)["OrganizationalUnits"]
        parent = next(o["Id"] for o in ous if o["Name"] == name)
    return str(parent)


def when_free(call: Callable[[], T], timeout: float = 120) -> T:
    """``call()``, waiting while another operation runs on the StackSet (AWS's one at a time)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except Exception as err:
            if "OperationInProgress" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _create_one(org: Any, root: str, target: str, prefix: str, endpoint: str) -> str:
    tag = uuid.uuid4().hex[:10]
    status = org.create_account(AccountName=f"{prefix}-{tag}", Email=f"{prefix}-{tag}@example.com")
    request_id = status["CreateAccountStatus"]["Id"]

    def created() -> str | None:
        state = org.describe_create_account_status(CreateAccountRequestId=request_id)
        done = state["CreateAccountStatus"]
        if done["State"] == "FAILED":
            raise RuntimeError(f"CreateAccount failed: {done.get('FailureReason')}")
        return str(done["AccountId"]) if done["State"] == "SUCCEEDED" else None

    account_id = until(created, "account created")
    org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=target)
    give_stack_set_role(endpoint, account_id)
    return account_id


def give_stack_set_role(endpoint: str, account_id: str) -> None:
    """The StackSet execution role an account that has had StackSets for years has (made by
    its platform team, as the engine makes it in the accounts it vends); without it the sandbox
    fails the account's instances as AWS does."""
    sts = client(endpoint, "sts")
    management = sts.get_caller_identity()["Account"]
    arn = f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"

    def assumed() -> dict[str, str] | None:
        try:
            creds: dict[str, str] = sts.assume_role(RoleArn=arn, RoleSessionName="fleet")[
                "Credentials"
            ]
            return creds
        except ClientError as err:  # a new account's role is not assumable at once
            if err.response["Error"]["Code"] != "AccessDenied":
                raise
            return None

    creds = until(assumed, f"{arn} assumable", timeout=120)
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{management}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    try:
        iam.create_role(RoleName=STACK_SET_EXECUTION_ROLE, AssumeRolePolicyDocument=trust)
    except ClientError as err:
        if err.response["Error"]["Code"] != "EntityAlreadyExists":
            raise


def seed(
    endpoint: str,
    ou_path: str,
    count: int,
    stack_set: str,
    regions: list[str],
    prefix: str = "fleet",
    parallel: int = 8,
) -> list[str]:
    """``count`` accounts in ``ou_path``, each with ``stack_set``'s instances in ``regions``
    (none when ``regions`` is empty)."""
    org = client(endpoint, "organizations")
    cfn = client(endpoint, "cloudformation")
    root = org.list_roots()["Roots"][0]["Id"]
    target = ou_id(org, ou_path)
    with ThreadPoolExecutor(parallel) as pool:
        accounts = sorted(
            pool.map(lambda _: _create_one(org, root, target, prefix, endpoint), range(count))
        )
    if not regions:
        return accounts  # accounts only: an OU's members that never had the StackSet
    operation = when_free(
        lambda: cfn.create_stack_instances(
            StackSetName=stack_set,
            Accounts=accounts,
            Regions=regions,
            OperationPreferences={
                "MaxConcurrentPercentage": 100,
                "RegionConcurrencyType": "PARALLEL",
            },
        )["OperationId"]
    )

    def finished() -> str | None:
        op = cfn.describe_stack_set_operation(StackSetName=stack_set, OperationId=operation)
        status = str(op["StackSetOperation"]["Status"])
        return status if status in ("SUCCEEDED", "FAILED", "STOPPED") else None

    status = until(finished, "instances created")
    if status != "SUCCEEDED":
        raise RuntimeError(f"CreateStackInstances for the fleet ended {status}")
    return accounts


def seed_at_once(
    endpoint: str, ou_path: str, count: int, prefix: str, control_tower: bool
) -> list[str]:
    """``count`` accounts made inside the sandbox at once (``POST /_sandbox/fleet``), enrolled in
    Control Tower through their OU when asked: a fleet of 10,000 in seconds."""
    resp = httpx.post(
        f"{endpoint}/_sandbox/fleet",
        json={
            "organizational_unit": ou_path,
            "count": count,
            "prefix": prefix,
            "control_tower": control_tower,
        },
        timeout=600,
    )
    resp.raise_for_status()
    return [str(a) for a in resp.json()["accounts"]]


async def seed_inventory(
    client: Any,
    accounts: list[str],
    ou_path: str,
    ou_id: str,
    *,
    task_queue: str,
    owners: list[str],
    owner_key: bytes,
    control_tower: bool,
    parallel: int = 64,
) -> None:
    """Each account's own workflow started with the record a vend would have left (an account
    managed for years), as the inventory of a fleet: the i-th account owned by
    ``owners[i % len(owners)]``. ``client`` must carry the stack's payload codec."""
    now = datetime.now(UTC)
    lanes = asyncio.Semaphore(parallel)

    async def start(i: int, account_id: str) -> None:
        owner = owners[i % len(owners)]
        name = f"fleet-{account_id}"
        record = ManagedAccount(
            account_id=account_id,
            request=AccountRequest.model_validate(
                {
                    "account_name": name,
                    "account_email": f"aws+{name}@example.com",
                    "organizational_unit": ou_path,
                    "environment": "dev",
                    "owner_email": owner,
                    "cost_center": "CC-FLEET",
                    "justification": "managed for years",
                    "workload_security": {"enabled": False},
                    "billing": {"customer_id": "cust-001"},
                }
            ),
            organizational_unit_id=ou_id,
            control_tower="enrolled (fleet)" if control_tower else "not enrolled",
            requested_by="fleet",
            owner_digest=sa.owner_digest(owner, owner_key),
            managed_since=now,
            last_checked_at=now,
        )
        async with lanes:
            await client.start_workflow(
                account_contract.WORKFLOW,
                ManagedAccountInput(account=record),
                id=account_contract.account_workflow_id(account_id),
                task_queue=task_queue,
                memo={"account_name": name},
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )

    await asyncio.gather(*(start(i, a) for i, a in enumerate(accounts)))
