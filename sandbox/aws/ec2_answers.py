"""Where moto's EC2 answers say what AWS would not.

An instance's or image's ``platform`` is ``Windows`` on AWS, or absent (Linux and the rest: their
kind is in ``platformDetails``); the model's enum has that one value. moto answers ``windows``
and ``Linux/UNIX``, which the contract check (``sandbox/aws/contract.py``) refuses.
"""

from __future__ import annotations

import re

_LINUX = re.compile(rb"\s*<platform>Linux/UNIX</platform>")


def platforms(body: bytes) -> bytes:
    body = body.replace(b"<platform>windows</platform>", b"<platform>Windows</platform>")
    return _LINUX.sub(b"", body)
