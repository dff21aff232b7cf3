"""The sandbox's cleaner: aws-nuke's command line and configuration over what moto holds.

The engine runs ``aws-nuke run --config FILE --no-dry-run --no-prompt --no-alias-check`` with
an account's credentials in the environment (``activities/cleaning.py``); the embedded stack
points ``VEND_LEASES__CLEANER_COMMAND`` here instead. Like aws-nuke it refuses an account on
the blocklist, cleans the configured regions, deletes what the services let it delete and
reports the rest as failed, exiting non-zero when anything failed. What AWS refuses, moto
refuses here too: an instance with termination protection, a table with deletion protection,
a VPC something still uses. It knows fewer resource types than aws-nuke (those the engine's
inventory checks), which can only leave more behind, never report less.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

Removal = tuple[str, str, Callable[[], Any]]  # (type, id, delete)


def _instances(ec2: Any) -> Iterator[Removal]:
    live = ["pending", "running", "stopping", "stopped"]
    found = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": live}])
    for reservation in found["Reservations"]:
        for instance in reservation["Instances"]:
            iid = instance["InstanceId"]
            yield "EC2Instance", iid, partial(ec2.terminate_instances, InstanceIds=[iid])


def _vpcs(ec2: Any) -> Iterator[Removal]:
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"]:
        vid = vpc["VpcId"]
        yield "EC2VPC", vid, partial(_delete_vpc, ec2, vid)


def _delete_vpc(ec2: Any, vpc_id: str) -> None:
    """aws-nuke deletes a VPC's subnets as resources of their own first; here, with it."""
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc_id)


def _queues(sqs: Any) -> Iterator[Removal]:
    for url in sqs.list_queues().get("QueueUrls", []):
        yield "SQSQueue", url.rsplit("/", 1)[-1], partial(sqs.delete_queue, QueueUrl=url)


def _topics(sns: Any) -> Iterator[Removal]:
    for topic in sns.list_topics()["Topics"]:
        arn = topic["TopicArn"]
        yield "SNSTopic", arn.rsplit(":", 1)[-1], partial(sns.delete_topic, TopicArn=arn)


def _tables(dynamodb: Any) -> Iterator[Removal]:
    for name in dynamodb.list_tables()["TableNames"]:
        yield "DynamoDBTable", name, partial(dynamodb.delete_table, TableName=name)


def _buckets(s3: Any) -> Iterator[Removal]:
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        yield "S3Bucket", name, partial(_delete_bucket, s3, name)


def _delete_bucket(s3: Any, name: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=name)


REGIONAL: list[tuple[str, Callable[[Any], Iterator[Removal]]]] = [
    ("ec2", _instances),
    ("sqs", _queues),
    ("sns", _topics),
    ("dynamodb", _tables),
    ("ec2", _vpcs),  # after the instances in it
]


def nuke(config: dict[str, Any], session: Any) -> tuple[int, int]:
    """(removed, failed) over every configured region."""
    account = session.client("sts").get_caller_identity()["Account"]
    if account in [str(a) for a in config.get("blocklist", [])]:
        raise SystemExit(f"aws-nuke: account {account} is on the blocklist; refusing to run")
    if account not in {str(a) for a in config.get("accounts", {})}:
        raise SystemExit(f"aws-nuke: account {account} is not in the configuration")
    removed = failed = 0
    for region in config.get("regions", []):
        listers = [("s3", _buckets)] if region == "global" else REGIONAL
        for service, lister in listers:
            client = session.client(
                service, region_name="us-east-1" if region == "global" else region
            )
            for kind, rid, delete in list(lister(client)):
                outcome = {"region": region, "type": kind, "id": rid}
                try:
                    delete()
                    removed += 1
                    outcome["state"] = "removed"
                except ClientError as err:
                    failed += 1
                    code = err.response["Error"]["Code"]
                    outcome |= {"state": "failed", "error": code}
                    print(f"{region} - {kind} - {rid} - failed: {code}", file=sys.stderr)
                print(json.dumps(outcome), flush=True)
    return removed, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aws-nuke")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--config", "-c", required=True)
    run.add_argument("--no-dry-run", action="store_true")
    run.add_argument("--no-prompt", action="store_true")
    run.add_argument("--no-alias-check", action="store_true")
    run.add_argument("--log-format", default="text")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    if not args.no_dry_run:
        print("aws-nuke: dry run (nothing deleted); --no-dry-run deletes", file=sys.stderr)
        return 0
    removed, failed = nuke(config, boto3.Session())
    summary = f"Nuke complete: {failed} failed, {removed} finished."
    print(summary, file=sys.stderr)
    if failed:
        print("aws-nuke: there are resources in failed state", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
