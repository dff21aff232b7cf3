"""Documents generated from the code stay in step with it."""

from __future__ import annotations

from tools import settings_reference


def test_configuration_reference_is_current() -> None:
    assert settings_reference.OUT.read_text() == settings_reference.render(), (
        "docs/configuration.md is stale: run `python -m tools.settings_reference --write`"
    )
