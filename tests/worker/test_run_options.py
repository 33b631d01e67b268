"""The settings an agent run needs reach the agent process with each job (agents read no environment)."""

from __future__ import annotations

import pytest

from agents.options import RunOptions
from service.config import Settings
from worker.runner import run_options


def test_defaults_are_the_agents_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENSIUM_MAX_COLUMNS", "AGENSIUM_STREAMING_THRESHOLD_BYTES", "AGENSIUM_DIAGNOSTICS"):
        monkeypatch.delenv(name, raising=False)
    assert run_options(Settings()) == RunOptions()


def test_the_environment_of_the_service_reaches_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENSIUM_MAX_COLUMNS", "123")
    monkeypatch.setenv("AGENSIUM_STREAMING_THRESHOLD_BYTES", "1000")
    monkeypatch.setenv("AGENSIUM_DIAGNOSTICS", "1")
    assert run_options(Settings()) == RunOptions(max_columns=123, streaming_threshold_bytes=1000, diagnostics=True)
