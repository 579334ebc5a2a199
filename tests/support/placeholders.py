"""The keyed placeholder a test gateway writes for a value (``data.placeholders: keyed``, the
default), computed as the gateway does: every test gateway masks under ``VAULT_KEY``
(tests/conftest.py ``UPSTREAM_KEYS``), offline tools under ``OFFLINE_TOKEN_KEY``."""

from __future__ import annotations

import re

from gateway.boundary.actions import TokenMinter
from gateway.tools.offline import OFFLINE_TOKEN_KEY

__all__ = ["OFFLINE_TOKEN_KEY", "VAULT_KEY", "keyed", "keyed_shape"]

VAULT_KEY = "test-vault-key:keyed-placeholders-0123456789"


def keyed(workflow: str, entity: str, value: str, key: str = VAULT_KEY) -> str:
    """``<ENTITY_xxxxxx>``: what ``value`` masks to in ``workflow`` under ``key``."""
    return TokenMinter(key.encode()).keyed_placeholder(workflow, entity, value)


def keyed_shape(entity: str) -> re.Pattern[str]:
    """Any keyed placeholder of ``entity`` (for gateways whose key the test does not know)."""
    return re.compile(rf"<{entity}_[a-z2-7]{{6}}>")
