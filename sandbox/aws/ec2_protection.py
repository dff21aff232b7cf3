"""Termination protection asked for at launch, kept as AWS keeps it.

RunInstances takes ``DisableApiTermination``; moto reads it from ModifyInstanceAttribute only,
so an instance launched protected could be terminated here, which AWS refuses
(``OperationNotPermitted``). The cleaner's tests lean on that refusal: a protected instance is
what a lease's cleaning cannot remove, and the account must be quarantined with it listed.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.ec2.models.instances import Instance
from moto.ec2.responses.instances import InstanceResponse

_launch = threading.local()


def install() -> None:
    if getattr(InstanceResponse.run_instances, "_vend_protection", False):
        return
    run_instances = InstanceResponse.run_instances
    made = Instance.__init__

    def run_with_protection(self: InstanceResponse) -> Any:
        _launch.protected = str(self._get_param("DisableApiTermination")).lower() == "true"
        try:
            return run_instances(self)
        finally:
            _launch.protected = False

    def init(self: Instance, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        if getattr(_launch, "protected", False):
            self.disable_api_termination = True

    run_with_protection._vend_protection = True  # type: ignore[attr-defined]
    InstanceResponse.run_instances = run_with_protection  # type: ignore[method-assign]
    Instance.__init__ = init  # type: ignore[method-assign]
