"""Settings made inside the member account (through its execution role): the IAM account alias
people sign in with, and no default VPCs.

A default VPC is deleted only when nothing uses it (no network interface in it): a VPC with
something in it is left, and the step says where. Deleting one takes its internet gateway and
subnets first, as AWS requires. The cancel's undo makes the default VPCs again
(``CreateDefaultVpc``) in the regions this request emptied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field
from temporalio import activity

from activities.account_settings import AccountSettingsActivities
from activities.aws_errors import error_code, final, to_application_error
from activities.member_accounts import MemberAccountAccess
from activities.setting_result import SettingResult


class AliasInput(BaseModel):
    account_id: str
    alias: str


class VpcInput(BaseModel):
    account_id: str


class VpcResult(BaseModel):
    detail: str
    deleted_in: list[str] = Field(default_factory=list)  # regions whose default VPC went
    kept: dict[str, str] = Field(default_factory=dict)  # region -> why it was left
    attempt: int = 1


class VpcRestore(BaseModel):
    account_id: str
    regions: list[str]


@dataclass
class MemberSettingsActivities:
    members: MemberAccountAccess
    account_api: AccountSettingsActivities

    @activity.defn(no_thread_cancel_exception=True)
    def set_account_alias(self, inp: AliasInput) -> SettingResult:
        """An account has at most one alias; aliases are unique across AWS (EntityAlreadyExists
        when another account holds it: the step parks, naming it)."""
        try:
            iam = self.members.client(inp.account_id, "iam")
            current = iam.list_account_aliases().get("AccountAliases", [])
            if current != [inp.alias]:
                try:
                    iam.create_account_alias(AccountAlias=inp.alias)
                except ClientError as err:
                    if error_code(err) == "EntityAlreadyExists":
                        raise final(
                            f"the alias {inp.alias!r} is taken by another AWS account; set the "
                            "landing zone's alias_prefix, or skip this step",
                            "AccountAliasTaken",
                        ) from err
                    raise
        except ClientError as err:
            raise to_application_error(err, action="CreateAccountAlias") from err
        return SettingResult(detail=f"alias {inp.alias}", attempt=activity.info().attempt)

    @activity.defn(no_thread_cancel_exception=True)
    def remove_account_alias(self, inp: AliasInput) -> SettingResult:
        try:
            iam = self.members.client(inp.account_id, "iam")
            if inp.alias in iam.list_account_aliases().get("AccountAliases", []):
                iam.delete_account_alias(AccountAlias=inp.alias)
        except ClientError as err:
            raise to_application_error(err, action="DeleteAccountAlias") from err
        return SettingResult(detail=f"alias {inp.alias} removed", attempt=activity.info().attempt)

    @activity.defn(no_thread_cancel_exception=True)
    def delete_default_vpcs(self, inp: VpcInput) -> VpcResult:
        deleted: list[str] = []
        kept: dict[str, str] = {}
        try:
            regions = self.account_api.enabled_regions(inp.account_id)
            for region in regions:
                ec2 = self.members.client(inp.account_id, "ec2", region=region)
                vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
                for vpc in vpcs.get("Vpcs", []):
                    why = self._in_use(ec2, vpc["VpcId"])
                    if why:
                        kept[region] = why
                        continue
                    self._delete(ec2, vpc["VpcId"])
                    deleted.append(region)
        except ClientError as err:
            raise to_application_error(err, action="DeleteVpc") from err
        detail = f"default VPC deleted in {len(deleted)} of {len(regions)} regions"
        if kept:
            detail += "; kept (in use): " + ", ".join(f"{r} ({w})" for r, w in sorted(kept.items()))
        return VpcResult(
            detail=detail, deleted_in=deleted, kept=kept, attempt=activity.info().attempt
        )

    @activity.defn(no_thread_cancel_exception=True)
    def restore_default_vpcs(self, inp: VpcRestore) -> SettingResult:
        try:
            for region in inp.regions:
                ec2 = self.members.client(inp.account_id, "ec2", region=region)
                if ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]:
                    continue
                ec2.create_default_vpc()
        except ClientError as err:
            raise to_application_error(err, action="CreateDefaultVpc") from err
        return SettingResult(
            detail=f"default VPC made again in {', '.join(inp.regions) or 'no region'}",
            attempt=activity.info().attempt,
        )

    @staticmethod
    def _in_use(ec2: Any, vpc_id: str) -> str | None:
        found = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        count = len(found.get("NetworkInterfaces", []))
        return f"{count} network interface(s)" if count else None

    @staticmethod
    def _delete(ec2: Any, vpc_id: str) -> None:
        """The default VPC and what it holds. Each deletion of something already gone counts as
        done: an earlier attempt, or one still running beside this one after a heartbeat
        timeout, may have deleted it between the listing and the call."""
        by_vpc = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
        for igw in ec2.describe_internet_gateways(Filters=by_vpc).get("InternetGateways", []):
            gateway = igw["InternetGatewayId"]
            with _gone_is_done("InvalidInternetGatewayID.NotFound", "Gateway.NotAttached"):
                ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
            with _gone_is_done("InvalidInternetGatewayID.NotFound"):
                ec2.delete_internet_gateway(InternetGatewayId=gateway)
        in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
        for subnet in ec2.describe_subnets(Filters=in_vpc).get("Subnets", []):
            with _gone_is_done("InvalidSubnetID.NotFound"):
                ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        with _gone_is_done("InvalidVpcID.NotFound"):
            ec2.delete_vpc(VpcId=vpc_id)


@contextmanager
def _gone_is_done(*gone: str) -> Iterator[None]:
    try:
        yield
    except ClientError as err:
        if error_code(err) not in gone:
            raise
