"""What ``vend doctor`` reports: every check of an organization's readiness, with the fix.

Shared by the worker (which runs the checks at start and holds back the steps whose
prerequisites failed), the API (``GET /v1/landing-zone/health``, which asks a worker) and the CLI.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, Field

# The workflow the API starts to have a worker run the checks (it holds the credentials).
WORKFLOW: Final = "Preflight"
# An activity that fails with this type found a failed prerequisite: its step waits (no attempt
# counted, no operator paged) and shows why, instead of failing request by request.
PREREQUISITE_FAILED: Final = "PrerequisiteFailed"


class CheckStatus(StrEnum):
    ok = "ok"
    warning = "warning"
    failed = "failed"


class CheckResult(BaseModel):
    name: str = Field(examples=["organizations.ou_paths"])
    title: str
    status: CheckStatus
    found: str  # what the check saw
    fix: str | None = None  # the exact change that makes it pass
    # Activities that wait while this check fails: only organization-wide prerequisites hold
    # every request; a problem with one OU or one baseline fails that request's step instead.
    gates: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class PreflightReport(BaseModel):
    checked_at: datetime
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return not self.failed()

    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == CheckStatus.failed]

    def blocking(self, activity_type: str) -> list[CheckResult]:
        return [c for c in self.failed() if activity_type in c.gates]
