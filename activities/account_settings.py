"""The Account API from the management account (trusted access for AWS Account Management):
the alternate contacts AWS writes to about billing, operations and security, and the opt-in
regions an OU's accounts need.

``EnableRegion`` is asynchronous (``ENABLING`` until ``ENABLED``, minutes on AWS): a retry finds
the region enabling and waits for it instead of asking again; asking while it is already
enabled or enabling is never done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from temporalio import activity

from activities.aws_errors import error_code, final, to_application_error
from activities.heartbeats import beat, pause
from activities.setting_result import SettingResult
from activities.waiting import patiently
from common.account_settings import Contact

_CONTACT_TYPE = {"billing": "BILLING", "operations": "OPERATIONS", "security": "SECURITY"}
ENABLED = ("ENABLED", "ENABLED_BY_DEFAULT")


class ContactsInput(BaseModel):
    account_id: str
    contacts: dict[str, Contact]


class RegionsInput(BaseModel):
    account_id: str
    regions: list[str]
    timeout_seconds: float = 3600.0  # AWS: usually minutes, sometimes hours


@dataclass
class AccountSettingsActivities:
    account: Any  # the Account API client
    poll_interval_seconds: float = 10.0

    @activity.defn(no_thread_cancel_exception=True)
    def set_alternate_contacts(self, inp: ContactsInput) -> SettingResult:
        """PutAlternateContact replaces what is there: idempotent by nature."""
        try:
            for kind, contact in sorted(inp.contacts.items()):
                self.account.put_alternate_contact(
                    AccountId=inp.account_id,
                    AlternateContactType=_CONTACT_TYPE[kind],
                    Name=contact.name,
                    Title=contact.title,
                    EmailAddress=str(contact.email),
                    PhoneNumber=contact.phone,
                )
        except ClientError as err:
            raise to_application_error(err, action="PutAlternateContact") from err
        return SettingResult(
            detail="contacts set: " + ", ".join(sorted(inp.contacts)),
            attempt=activity.info().attempt,
        )

    @activity.defn(no_thread_cancel_exception=True)
    def remove_alternate_contacts(self, inp: ContactsInput) -> SettingResult:
        try:
            for kind in sorted(inp.contacts):
                try:
                    self.account.delete_alternate_contact(
                        AccountId=inp.account_id, AlternateContactType=_CONTACT_TYPE[kind]
                    )
                except ClientError as err:
                    if error_code(err) != "ResourceNotFoundException":
                        raise
        except ClientError as err:
            raise to_application_error(err, action="DeleteAlternateContact") from err
        return SettingResult(detail="contacts removed", attempt=activity.info().attempt)

    @activity.defn(no_thread_cancel_exception=True)
    def enable_regions(self, inp: RegionsInput) -> SettingResult:
        return self._opt(inp, enable=True)

    @activity.defn(no_thread_cancel_exception=True)
    def disable_regions(self, inp: RegionsInput) -> SettingResult:
        """The cancel's undo of enable_regions."""
        return self._opt(inp, enable=False)

    def _opt(self, inp: RegionsInput, *, enable: bool) -> SettingResult:
        info = activity.info()
        started = float(info.heartbeat_details[0]) if info.heartbeat_details else None
        action = "EnableRegion" if enable else "DisableRegion"
        done, going = (ENABLED, "ENABLING") if enable else (("DISABLED",), "DISABLING")
        try:
            statuses = {r: self.region_status(inp.account_id, r) for r in inp.regions}
            for region, status in statuses.items():
                if status in done or status == going:
                    continue  # done, or an earlier attempt asked and AWS is at it
                if enable:
                    self.account.enable_region(AccountId=inp.account_id, RegionName=region)
                else:
                    self.account.disable_region(AccountId=inp.account_id, RegionName=region)
            started = started or time.time()
            waiting = [r for r in inp.regions if statuses[r] not in done]
            while waiting:
                waiting = [r for r in waiting if self.region_status(inp.account_id, r) not in done]
                if not waiting:
                    break
                if time.time() - started > inp.timeout_seconds:
                    raise final(
                        f"{action}: {', '.join(waiting)} still {going} after "
                        f"{inp.timeout_seconds:.0f} s",
                        "RegionOptTimeout",
                    )
                beat(started)
                pause(self.poll_interval_seconds, waiting_for=f"{action} {', '.join(waiting)}")
        except ClientError as err:
            raise to_application_error(err, action=action) from err
        verb = "enabled" if enable else "disabled"
        return SettingResult(
            detail=f"{verb} {', '.join(inp.regions)}" if inp.regions else "no region to change",
            attempt=info.attempt,
        )

    def alternate_contact(self, account_id: str, kind: str) -> str | None:
        """The email AWS has for this kind of alternate contact, or None when unset."""
        try:
            found = self.account.get_alternate_contact(
                AccountId=account_id, AlternateContactType=_CONTACT_TYPE[kind]
            )
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                return None
            raise
        return str(found["AlternateContact"]["EmailAddress"])

    def region_status(self, account_id: str, region: str) -> str:
        answer = patiently(
            lambda: self.account.get_region_opt_status(AccountId=account_id, RegionName=region),
            self.poll_interval_seconds,
            waiting_for=f"the opt-in status of {region}",
        )
        return str(answer["RegionOptStatus"])

    def enabled_regions(self, account_id: str) -> list[str]:
        """Every region the account can use (default ones and enabled opt-ins)."""
        pages = self.account.get_paginator("list_regions").paginate(
            AccountId=account_id, RegionOptStatusContains=list(ENABLED)
        )
        return sorted(str(r["RegionName"]) for page in pages for r in page.get("Regions", []))
