"""The policy fragment that makes models fall back to others, in one place for these tests."""

from __future__ import annotations

from typing import Any


def falling_back(models: list[str]) -> dict[str, Any]:
    """No retries, a 5 s deadline, and ``models`` as the fallback chain (``fallback.on`` left
    at its default, which includes ``upstream_error``)."""
    return {"upstream": {"timeout_s": 5, "retries": 0}, "fallback": {"models": models}}
