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
SERVICES = ("organizations", "iam", "sts", "cloudformation", "ssm", "ec2", "servicecatalog")


def save(path: Path, extra: dict[str, Any]) -> bool:
    state = {"backends": {s: dict(get_backend(s)) for s in SERVICES}, "extra": extra}  # type: ignore[call-overload]
    try:
        blob = pickle.dumps(state)
    except Exception as err:  # a backend holding an unpicklable object: keep running, warn
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
