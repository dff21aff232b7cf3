"""What a person reads on the console: the engine's lines, not every library's.

botocore announces at INFO, once per client, where it found credentials and endpoints; the
worker makes a dozen clients. Those stay below the third-party level (WARNING by default).
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import logging, boto3
from common import logging_setup
logging_setup.configure({level!r}, "worker", "text", {third!r})
boto3.session.Session().client("organizations", region_name="us-east-1",
                               endpoint_url="http://127.0.0.1:9")
logging.getLogger("vending.worker").info("worker polling the task queue")
logging.getLogger("vending.worker").debug("a debug line of ours")
"""


def _stderr(level: str, third: str) -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(level=level, third=third)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stderr


def test_library_chatter_stays_off_the_console_by_default() -> None:
    err = _stderr("INFO", "WARNING")
    assert "worker polling the task queue" in err
    assert "Found credentials" not in err
    assert "a debug line of ours" not in err


def test_our_level_and_theirs_are_separate_settings() -> None:
    err = _stderr("DEBUG", "INFO")
    assert "a debug line of ours" in err
    assert "Found credentials in environment variables" in err
