"""A StackSet's recent operations, read the way AWS serves them: in pages, newest first.

``ListStackSetOperations`` pages (at most 100 a page) and is eventually consistent; a busy
StackSet has thousands of operations over its life. What the engine looks for (an operation of
its own still running, another check's recent drift detection) is recent, so pages are read
newest first until they reach operations older than the window asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

RECENT = timedelta(hours=6)  # longer than any one step's attempt lets an operation run


def recent_operations(
    cloudformation: Any, stack_set: str, extra: dict[str, str], window: timedelta = RECENT
) -> Iterator[dict[str, Any]]:
    """The StackSet's operations created within ``window``, newest first."""
    since = datetime.now(UTC) - window
    pages = cloudformation.get_paginator("list_stack_set_operations").paginate(
        StackSetName=stack_set, **extra
    )
    for page in pages:
        for op in page["Summaries"]:
            created = op.get("CreationTimestamp")
            if isinstance(created, datetime) and _aware(created) < since:
                return
            yield op


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
