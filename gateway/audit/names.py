"""Routing values as logs and audit records may show them.

A client writes what it likes into ``model``, the workflow path segment, ``X-Workflow`` or
an unknown route's path: a card number there would otherwise land in the log and the audit
database verbatim. A value is shown as it is only when it is a configured name; anything
else becomes ``<unlisted:LEN:HASH>`` (a keyed hash, so equal values can be correlated in one
process, but not guessed back).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Container

__all__ = ["route_path", "shown_name"]

# Per process: the hash correlates within one process's records, and no key is kept anywhere
# a reader of the records could find it.
_KEY = os.urandom(32)
_MAX_PATH = 128


def _unlisted(value: str) -> str:
    digest = hmac.new(_KEY, value.encode(errors="replace"), hashlib.sha256).hexdigest()[:8]
    return f"<unlisted:{len(value)}:{digest}>"


def shown_name(value: str | None, configured: bool) -> str | None:
    """``value`` if it is a configured name, else a placeholder with its length and hash."""
    if value is None or configured:
        return value
    return _unlisted(value)


def route_path(path: str, words: Container[str], workflows: Container[str]) -> str:
    """An unknown route's path for the record: never the query string, at most 128
    characters, each segment that is neither a route word nor a configured workflow
    replaced by a placeholder."""
    path = path.split("?", 1)[0]
    segments = [
        s if (not s or s in words or s in workflows) else _unlisted(s) for s in path.split("/")
    ]
    shown = "/".join(segments)
    return shown if len(shown) <= _MAX_PATH else shown[: _MAX_PATH - 3] + "..."
