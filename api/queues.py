"""How long the queues are now, for a preview's ETA: asked of the coordinator workflows by
name (their query results are plain JSON here), and left out when they cannot answer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from api.shared_answers import SharedAnswer

log = logging.getLogger("vending.api.queues")

CONTROL_TOWER = ("control-tower-coordinator", "status")
CLOSE_QUOTA = ("close-quota", "get_state")


async def _ask(client: Client, workflow_id: str, query: str) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = await client.get_workflow_handle(workflow_id).query(
            query, result_type=dict, rpc_timeout=timedelta(seconds=3)
        )
    except (RPCError, TimeoutError) as err:
        log.info("queue %s did not answer: %s", workflow_id, err)
        return None
    return answer


# Previews may come in bursts (a page open in many tabs): the queues are asked once a few
# seconds per API process, whoever asks.
_SHARED: SharedAnswer[dict[str, int]] = SharedAnswer(ttl_seconds=5.0)


async def queue_lengths(client: Client) -> dict[str, int]:
    return await _SHARED.get(lambda: _ask_both(client))


async def _ask_both(client: Client) -> dict[str, int]:
    out: dict[str, int] = {}
    if ct := await _ask(client, *CONTROL_TOWER):
        out["control_tower_in_use"] = len(ct.get("holders", []))
        out["control_tower_waiting"] = len(ct.get("queue", [])) + len(ct.get("ou_queue", []))
    if quota := await _ask(client, *CLOSE_QUOTA):
        out["close_quota_used"] = len(quota.get("closures", []))
        out["close_quota_waiting"] = len(quota.get("queue", []))
    return out
