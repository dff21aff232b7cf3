"""The landing zone: which OUs exist, who may vend into them and what each implies.

It is policy, so it is a reviewed YAML file rather than environment variables. The API checks
requests against it; the workflow never reads it (a request carries a snapshot of its OU's
policy, so a later edit of the file cannot change a running request's history).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator


class Environment(StrEnum):
    prod = "prod"
    staging = "staging"
    dev = "dev"
    sandbox = "sandbox"


class WorkloadSecurityRequirement(StrEnum):
    required = "required"
    optional = "optional"
    off = "off"


class OrganizationalUnitPolicy(BaseModel):
    path: str
    open_for_vending: bool = True
    environments: list[Environment] = Field(default_factory=list)
    approvals_required: int = Field(default=1, ge=0, le=10)
    approval_window: timedelta = timedelta(days=7)
    baselines: list[str] = Field(default_factory=list)
    workload_security: WorkloadSecurityRequirement = WorkloadSecurityRequirement.optional

    @field_validator("path")
    @classmethod
    def _normalise_path(cls, value: str) -> str:
        parts = [p.strip() for p in value.strip("/").split("/")]
        if not all(parts):
            raise ValueError(f"OU path {value!r} has an empty segment")
        return "/".join(parts)


class LandingZone(BaseModel):
    allowed_email_domains: list[str] = Field(min_length=1)
    organizational_units: list[OrganizationalUnitPolicy]

    @model_validator(mode="after")
    def _unique_paths(self) -> LandingZone:
        paths = [ou.path for ou in self.organizational_units]
        dupes = {p for p in paths if paths.count(p) > 1}
        if dupes:
            raise ValueError(f"OU paths listed twice: {sorted(dupes)}")
        return self

    def find(self, path: str) -> OrganizationalUnitPolicy | None:
        wanted = path.strip().strip("/")
        return next((ou for ou in self.organizational_units if ou.path == wanted), None)

    def email_domain_allowed(self, email: str) -> bool:
        domain = email.rsplit("@", 1)[-1].lower()
        return any(
            domain == allowed.lower() or domain.endswith("." + allowed.lower())
            for allowed in self.allowed_email_domains
        )

    def all_paths(self) -> list[str]:
        """Every OU path including implied parents, parents first (what the sandbox seeds)."""
        out: list[str] = []
        for ou in self.organizational_units:
            parts = ou.path.split("/")
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                if prefix not in out:
                    out.append(prefix)
        return out


def load_landing_zone(path: Path) -> LandingZone:
    with path.open(encoding="utf-8") as fh:
        return LandingZone.model_validate(yaml.safe_load(fh))
