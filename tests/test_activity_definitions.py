"""Every activity notices its own cancellation (see ``activities.heartbeats``).

An activity defined without ``no_thread_cancel_exception`` gets CancelledError raised inside its
thread wherever it is, once inside the logging handler's lock, which then stayed held and hung
the whole worker. This fails for any activity added without it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from temporalio import activity

import activities


def _definitions() -> list[activity._Definition]:
    found = []
    for module_info in pkgutil.iter_modules(activities.__path__):
        module = importlib.import_module(f"activities.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for _, member in inspect.getmembers(cls, inspect.isfunction):
                defn = activity._Definition.from_callable(member)
                if defn is not None:
                    found.append(defn)
    return found


def test_every_activity_handles_its_own_cancellation() -> None:
    definitions = _definitions()
    assert len(definitions) >= 20, [d.name for d in definitions]
    raising = [d.name for d in definitions if not d.no_thread_cancel_exception]
    assert raising == []
