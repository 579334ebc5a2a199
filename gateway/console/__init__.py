"""The operator console: server-rendered pages over the review queue, the audit trail and the
loaded policies (docs/console-and-review.md). The package root exports only the settings,
which gateway/config.py imports; the routes are ``gateway.console.routes.console_router``."""

from __future__ import annotations

from gateway.console.settings import ConsoleConfig, ConsoleRoles

__all__ = ["ConsoleConfig", "ConsoleRoles"]
