"""A workflow that stands in for the requests a coordinator talks to: it records every signal
it gets (its name, its workflow time, its payload as JSON), so a specification reads what the
coordinator told whom, and when."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

from tests.waiting import eventually_async


@workflow.defn
class SignalListener:
    def __init__(self) -> None:
        self._heard: list[dict[str, Any]] = []
        self._stop = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._stop)

    @workflow.signal(dynamic=True)
    def heard(self, name: str, args: Sequence[RawValue]) -> None:
        payload = workflow.payload_converter().from_payload(args[0].payload) if args else None
        self._heard.append({"signal": name, "at": workflow.now().isoformat(), "payload": payload})

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.query
    def signals(self) -> list[dict[str, Any]]:
        return self._heard


async def heard(handle: Any, count: int) -> list[dict[str, Any]]:
    """The listener's signals, once it has ``count`` of them (each payload with its time)."""
    found: list[dict[str, Any]] = await eventually_async(
        lambda: handle.query(SignalListener.signals),
        lambda found: len(found) >= count,
        f"{handle.id} heard {count} signals",
        within=30,
        interval=0.02,
    )
    return [{**s["payload"], "at": s["at"]} for s in found]
