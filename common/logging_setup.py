"""One log setup for every process.

Text lines for the embedded stack (readable when the processes share a terminal); JSON lines in
production, where a log pipeline indexes them. Either way every record made while an activity
or workflow runs carries its workflow id and request id, and every API record made while
serving a request carries that request's id, so one request's story can be pulled out of the
interleaved logs of many processes.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity

# Set by the API for the duration of one HTTP request.
http_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "http_request_id", default=None
)
account_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "account_request_id", default=None
)
WORKFLOW_ID_PREFIX = "account-request-"


class ContextFilter(logging.Filter):
    """Adds workflow_id / request_id / http_request_id to every record where they are known."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = self.process
        workflow_id = None
        if activity.in_activity():
            info = activity.info()
            workflow_id = info.workflow_id
            record.activity = info.activity_type
            record.attempt = info.attempt
        else:
            wf: Any = getattr(record, "temporal_workflow", None)  # set by workflow.logger
            if isinstance(wf, dict):
                workflow_id = wf.get("workflow_id")
        if workflow_id:
            record.workflow_id = workflow_id
            if workflow_id.startswith(WORKFLOW_ID_PREFIX):
                record.request_id = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
        if (rid := account_request_id.get()) is not None:
            record.request_id = rid
            record.workflow_id = WORKFLOW_ID_PREFIX + rid
        if (hid := http_request_id.get()) is not None:
            record.http_request_id = hid
        return True


# Loggers whose records are ours (the engine's and the sandbox's); everything else is a third
# party's (botocore, httpx, uvicorn, ...) and speaks only from ``third_party_level`` up, so what a
# person reads on the console is the banner and the engine's own lines.
OURS = ("vending", "sandbox", "temporalio.workflow", "temporalio.activity")


def configure(level: str, name: str, fmt: str = "text", third_party_level: str = "WARNING") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter(name))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(process_name)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {name:<7} %(levelname)-5s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(third_party_level.upper())
    for logger in OURS:
        logging.getLogger(logger).setLevel(level.upper())
    # botocore logs request bodies at DEBUG; never let them through (they can hold secrets).
    logging.getLogger("botocore").setLevel(max(logging.INFO, root.level))
