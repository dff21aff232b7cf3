"""The sandbox AWS keeps its organization across restarts (a second ``make run`` reuses state)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx

from common.settings import DEFAULT_LANDING_ZONE
from sandbox.stack import Process, free_port
from tests.waiting import eventually, wait_until


def _created(org: Any, request_id: str) -> dict[str, Any]:
    """The creation once it has ended (SUCCEEDED or FAILED)."""
    status: dict[str, Any] = eventually(
        lambda: org.describe_create_account_status(CreateAccountRequestId=request_id)[
            "CreateAccountStatus"
        ],
        lambda found: found["State"] != "IN_PROGRESS",
        f"creation {request_id} ended",
        timeout=10,
    )
    return status


def _start(port: int, state: Path, log: Path) -> Process:
    argv = [
        sys.executable,
        "-m",
        "sandbox.aws",
        "--port",
        str(port),
        "--landing-zone",
        str(DEFAULT_LANDING_ZONE),
        "--create-account-seconds",
        "0.1",
        "--state-file",
        str(state),
        # Its Workload Security emulator listens too: on a port of its own, not the default
        # 5001 that a test in another process may hold at the same moment.
        "--ws-port",
        str(free_port()),
    ]
    proc = Process("sandbox-aws", argv, dict(os.environ), log.open("a")).start()

    def seeded() -> bool:
        try:
            state = httpx.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=1).json()
        except (httpx.HTTPError, ValueError):
            return False
        return bool(state["seeded"])

    try:
        wait_until(seeded, "the sandbox AWS seeded", timeout=30)
    except AssertionError as err:
        raise AssertionError(log.read_text()) from err
    return proc


def test_accounts_and_ous_survive_a_restart(tmp_path: Path) -> None:
    port, state, log = free_port(), tmp_path / "aws.pickle", tmp_path / "aws.log"
    org = boto3.client(
        "organizations",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    proc = _start(port, state, log)
    try:
        created = org.create_account(Email="keep@example.com", AccountName="keep")

        def status() -> dict[str, Any]:
            return dict(
                org.describe_create_account_status(
                    CreateAccountRequestId=created["CreateAccountStatus"]["Id"]
                )["CreateAccountStatus"]
            )

        wait_until(lambda: status()["State"] == "SUCCEEDED", "the account created")
        account_id = status()["AccountId"]
        roots_before = org.list_roots()["Roots"][0]["Id"]
    finally:
        proc.stop()
    assert state.exists()

    proc = _start(port, state, log)
    try:
        emails = [a["Email"] for a in org.list_accounts()["Accounts"]]
        assert emails.count("keep@example.com") == 1
        assert org.list_roots()["Roots"][0]["Id"] == roots_before
        again = org.describe_create_account_status(
            CreateAccountRequestId=created["CreateAccountStatus"]["Id"]
        )["CreateAccountStatus"]
        assert again["AccountId"] == account_id
        ous = org.list_organizational_units_for_parent(ParentId=roots_before)
        assert len([o for o in ous["OrganizationalUnits"] if o["Name"] == "Workloads"]) == 1
    finally:
        proc.stop()


def test_an_account_answered_for_survives_a_kill_at_any_moment(tmp_path: Path) -> None:
    """AWS does not forget an account; neither may the sandbox. Accounts whose creation was
    answered SUCCEEDED, one moved, one still in progress, then SIGKILL (no save on the way out,
    as when the launcher's grace runs out on a large state): every one is there after the
    restart, the one in progress completes, and each can still be assumed into."""
    port, state, log = free_port(), tmp_path / "aws.pickle", tmp_path / "aws.log"
    endpoint = f"http://127.0.0.1:{port}"
    keys = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
    org = boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1", **keys)
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", **keys)
    proc = _start(port, state, log)
    httpx.post(f"{endpoint}/_sandbox/config", json={"role_ready_seconds": 0}).raise_for_status()
    try:
        done = []
        for name in ("kill-a", "kill-b"):
            request = org.create_account(Email=f"{name}@example.com", AccountName=name)
            status = _created(org, request["CreateAccountStatus"]["Id"])
            done.append(status["AccountId"])
        root = org.list_roots()["Roots"][0]["Id"]
        ou = org.create_organizational_unit(ParentId=root, Name="KillTest")["OrganizationalUnit"]
        org.move_account(AccountId=done[1], SourceParentId=root, DestinationParentId=ou["Id"])
        pending = org.create_account(Email="kill-c@example.com", AccountName="kill-c")
    finally:
        proc.kill()

    proc = _start(port, state, log)
    httpx.post(f"{endpoint}/_sandbox/config", json={"role_ready_seconds": 0}).raise_for_status()
    try:
        accounts = {a["Id"]: a for a in org.list_accounts()["Accounts"]}
        assert set(done) <= set(accounts), log.read_text()
        assert org.list_parents(ChildId=done[1])["Parents"][0]["Id"] == ou["Id"]
        status = _created(org, pending["CreateAccountStatus"]["Id"])
        assert status["State"] == "SUCCEEDED", status
        emails = [a["Email"] for a in org.list_accounts()["Accounts"]]
        assert emails.count("kill-c@example.com") == 1
        for account in [*done, status["AccountId"]]:
            role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
            assert sts.assume_role(RoleArn=role, RoleSessionName="restart-check")["Credentials"]
    finally:
        proc.stop()
