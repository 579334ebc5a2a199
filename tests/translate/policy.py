"""The policy fragment that makes models fall back to others, in one place for these tests."""

from __future__ import annotations

from typing import Any


def falling_back(models: list[str]) -> dict[str, Any]:
    """``upstream`` (no retries, a 5 s deadline) with ``models`` as the fallback chain."""
    return {"upstream": {"timeout_s": 5, "retries": 0, "fallback_models": models}}
