"""Simulated agents (bench/sim_agents.py) in the test's event loop."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from sim_agents import SimFleet, capture_payloads  # noqa: E402

_PAYLOADS: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="session")
def payloads() -> dict[str, dict[str, Any]]:
    if not _PAYLOADS:
        _PAYLOADS.update(capture_payloads())
    return _PAYLOADS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


__all__ = ["SimFleet"]
