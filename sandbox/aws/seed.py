"""Seed the sandbox organization with the landing zone's OUs (idempotent: safe on every start)."""

from __future__ import annotations

from typing import Any

import boto3

from vending.landing_zone import LandingZone


def seed_organization(endpoint: str, lz: LandingZone, region: str = "us-east-1") -> dict[str, str]:
    org: Any = boto3.client(
        "organizations",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    try:
        org.describe_organization()
    except org.exceptions.AWSOrganizationsNotInUseException:
        org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ids: dict[str, str] = {"": root}
    for path in lz.all_paths():
        parent_path, _, name = path.rpartition("/")
        parent = ids[parent_path]
        existing = {
            ou["Name"]: ou["Id"]
            for page in org.get_paginator("list_organizational_units_for_parent").paginate(
                ParentId=parent
            )
            for ou in page["OrganizationalUnits"]
        }
        ids[path] = (
            existing.get(name)
            or org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"][
                "Id"
            ]
        )
    return ids
