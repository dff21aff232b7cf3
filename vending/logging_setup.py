"""One log format for every process, so the embedded stack's interleaved output stays readable."""

from __future__ import annotations

import logging


def configure(level: str, name: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {name:<7} %(levelname)-5s %(name)s: %(message)s",
    )
    # botocore logs request bodies at DEBUG; never let them through (they can hold secrets).
    logging.getLogger("botocore").setLevel(max(logging.INFO, logging.getLogger().level))
