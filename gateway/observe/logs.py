"""One structured access log line per request, and the JSON log format.

The line names what was decided and how long it took; never a credential, a detected value,
a prompt or an answer, and never the query string. Workflow and model values outside the
bounded sets read ``other`` (gateway/observe/labels.py), so a client cannot write arbitrary
text into the log either.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.observe.labels import Labels
from gateway.steps import Verdict

__all__ = ["ACCESS_LOGGER", "AccessLog", "JsonFormatter", "configure_logging"]

ACCESS_LOGGER = "gateway.access"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class AccessLog:
    """Writes the access line of a finished request at ``level``."""

    def __init__(self, labels: Labels, level: str = "info") -> None:
        self._labels = labels
        self._level = _LEVELS[level]
        self._log = logging.getLogger(ACCESS_LOGGER)

    def fields(self, ctx: RequestContext, verdict: Verdict, seconds: float) -> dict[str, Any]:
        """The line's fields: the same in text and JSON."""
        labels, policy, request = self._labels, ctx.policy, ctx.request
        model = ctx.model_used or (request.model if request is not None else None)
        return {
            "request_id": ctx.request_id,
            "trace_id": ctx.trace_id,
            "method": ctx.method,
            "path": ctx.route,
            "workflow": labels.workflow(ctx.workflow),
            "policy_version": policy.version if policy is not None else None,
            "decision": verdict.decision,
            "reasons": [labels.reason(code) for code in verdict.reasons],
            "status": ctx.status,
            "latency_ms": round(seconds * 1000, 3),
            "model": labels.model(model),
            "tokens_in": ctx.tokens_in,
            "tokens_out": ctx.tokens_out,
        }

    def write(self, ctx: RequestContext, verdict: Verdict, seconds: float) -> None:
        if not self._log.isEnabledFor(self._level):
            return
        fields = self.fields(ctx, verdict, seconds)
        text = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        self._log.log(self._level, "%s", text, extra={"access": fields})

    def event(self, message: str, **fields: Any) -> None:
        """A notable event that is not a request (a new prompt fingerprint in a workflow)."""
        text = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        self._log.warning("%s %s", message, text, extra={"access": {"event": message, **fields}})


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message; an access line's fields
    replace its message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            out.update(access)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str, fmt: str) -> None:
    """The root logger for ``gateway serve``: ``fmt`` is ``text`` or ``json``."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
