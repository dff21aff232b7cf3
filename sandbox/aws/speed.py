"""Two moto costs that grow with the number of accounts, removed for the sandbox.

Found by profiling the sandbox under the quota benchmark (py-spy): about 90% of its CPU went to
building IAM backends, under moto's global backend lock, so every call waited.
- Every request resolves its caller's account by asking each account's IAM backend whether it
  issued the access key, and asking instantiates the backend. An account whose IAM backend was
  never created cannot have issued a key, so it is skipped instead.
- Each new IAM backend parses moto's whole AWS-managed-policy catalogue from JSON again. It is
  parsed once per process instead (the objects are still made per account, as moto expects).
Behaviour is unchanged; only the time is.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam import models as iam_models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.settings import load_iam_aws_managed_policies
from moto.utilities.utils import PARTITION_NAMES


@cache
def _catalogue() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(aws_managed_policies_data)
    return parsed


def _init_aws_policies(self: Any) -> list[Any]:
    if not load_iam_aws_managed_policies():
        return []
    return [
        iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
        for name, data in _catalogue().items()
    ]


def get_account_id_from(access_key: str) -> str:
    for account_id, account in list(iam_models.iam_backends.items()):
        for partition in PARTITION_NAMES:
            if not dict.__contains__(account, partition):
                continue  # never instantiated: it issued no key
            if access_key in dict.__getitem__(account, partition).access_keys:
                return str(account_id)
    return DEFAULT_ACCOUNT_ID


def install() -> None:
    iam_models.IAMBackend._init_aws_policies = _init_aws_policies  # type: ignore[method-assign]
    iam_models.get_account_id_from = get_account_id_from
