"""Claims on account names, emails and adopted account ids: what a request asks of the claim
registry (``workflows/claim_registry.py``) and what it answers.

Two requests must never both get a name or an email, and visibility (eventually consistent) can
not promise that. A claim registry can: each of its shards is one workflow, and a workflow's
updates are applied one at a time, in order, so "free? then take" is atomic. Sixteen shards by
the claim's digest spread the load; their ids are fixed here, so the number can never change
without a migration.

Keys carry a digest of the normalised value, never the value (workflow ids, update arguments and
the registry's state show in the UI and the server's logs).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SHARDS = 16
REGISTRY_PREFIX = "claim-registry-"
TAKE_UPDATE = "take"
RELEASE_UPDATE = "release"
SWEEP_SIGNAL = "sweep"
HELD_QUERY = "held"


def claim_key(kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()[:40]
    return f"{kind}-{digest}"


def registry_id(key: str) -> str:
    """The shard that holds ``key``: the digest's first hex digit."""
    return f"{REGISTRY_PREFIX}{int(key.rsplit('-', 1)[1][0], 16) % SHARDS:x}"


def claims_task_queue(task_queue: str) -> str:
    """The registry's own task queue. Requests take claims in local activities, inside their
    workflow task; were the registry's workflow tasks on the same queue, a burst of requests
    could hold every workflow-task slot while waiting for a registry task that no slot is left
    to run."""
    return f"{task_queue}-claims"


@dataclass
class Take:
    key: str
    holder: str  # the workflow id of the request that takes it
    evict: str | None = None  # take it from this holder, which the caller saw has ended


@dataclass
class Taken:
    granted: bool
    holder: str  # who holds the key now


@dataclass
class Release:
    key: str
    holder: str  # released only if this holder still has it


@dataclass
class RegistryState:
    held: dict[str, str] = field(default_factory=dict)  # key -> holder's workflow id


@dataclass
class ClaimInput:
    take: list[str]
    release: list[str] = field(default_factory=list)  # after all of ``take`` are granted


@dataclass
class ClaimOutcome:
    refused: list[str]  # keys a live request holds (nothing released then)
