"""Keep the sandbox AWS across restarts of the embedded stack.

moto holds everything in memory; without this a second ``make run`` would show completed requests
whose accounts no longer exist. The backends and the realism layer are pickled together (one
``dumps`` keeps their shared references) when the server stops, and restored before it serves.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

from moto.backends import get_backend

log = logging.getLogger("sandbox.persistence")

# The services the engine and the sandbox's emulators use.
SERVICES = (
    "organizations",
    "iam",
    "sts",
    "cloudformation",
    "ssm",
    "ec2",
    "servicecatalog",
    "sso-admin",
    "identitystore",
    "budgets",
    "account",
)


def save(path: Path, extra: dict[str, Any]) -> bool:
    """Pickle each service's backends; one that cannot be pickled is left out, with a warning
    (moto's SSM backend holds a lambda: its parameters are re-seeded on start)."""
    backends: dict[str, Any] = {}
    for service in SERVICES:
        state = dict(get_backend(service))  # type: ignore[call-overload]
        try:
            pickle.dumps(state)
        except Exception as err:
            log.warning("sandbox %s state not saved: %s", service, err)
            continue
        backends[service] = state
    try:
        blob = pickle.dumps({"backends": backends, "extra": extra})
    except Exception as err:  # shared references into a skipped service, say
        log.warning("sandbox state not saved: %s", err)
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    return True


def load(path: Path) -> dict[str, Any] | None:
    """Restore the backends in place; return the extra state saved with them."""
    if not path.exists():
        return None
    try:
        state = pickle.loads(path.read_bytes())
    except Exception as err:
        log.warning("sandbox state in %s unreadable, starting afresh: %s", path, err)
        return None
    for service, accounts in state["backends"].items():
        backend = get_backend(service)
        backend.clear()
        backend.update(accounts)
    extra: dict[str, Any] = state["extra"]
    return extra
