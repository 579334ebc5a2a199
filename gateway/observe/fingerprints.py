"""Which prompt and which tools ran: keyed fingerprints of the system/developer instructions
and of the tool definitions as they left for the model (after the data boundary), never the
text. They go into the audit record (``fingerprints``), count requests per fingerprint per
workflow, and a fingerprint a workflow has not shown before is an event: a metric, a log
line, and ``gateway report``.

Keyed (HMAC-SHA256 with ``observe.fingerprint_key_env``): without the key, a fingerprint
cannot confirm a guessed prompt. Unset, they are plain SHA-256 (still never the text).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import orjson

from gateway.context import RequestContext
from gateway.observe.labels import OTHER, Labels
from gateway.observe.logs import AccessLog
from gateway.observe.metrics import Metrics

__all__ = ["Fingerprints", "fingerprint_key"]

# Distinct fingerprints per workflow and kind that get a label of their own; later ones
# count as "other" (a prompt that embeds the date would otherwise mint a series a day).
LABELLED_MAX = 20
# Fingerprints remembered per workflow and kind to tell a new one (per process).
SEEN_MAX = 1000


def fingerprint_key(env: Mapping[str, str], name: str) -> bytes | None:
    value = env.get(name)
    return value.encode() if value else None


class Fingerprints:
    def __init__(
        self,
        key: bytes | None,
        labels: Labels,
        metrics: Metrics | None,
        access: AccessLog | None,
    ) -> None:
        self._key = key
        self._labels = labels
        self._metrics = metrics
        self._access = access
        self._seen: dict[tuple[str, str], dict[str, str]] = {}
        self._labelled: dict[tuple[str, str], int] = {}

    def digest(self, data: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(data).hexdigest()[:16]
        return hmac.digest(self._key, data, "sha256").hex()[:16]  # one call, in C

    def take(self, ctx: RequestContext) -> None:
        """Fingerprint the request as it left (the forward step was left and an attempt
        was made), once."""
        request = ctx.request
        if request is None or ctx.fingerprints is not None or not ctx.attempts:
            return
        out: dict[str, str] = {}
        instructions = [
            slot.text
            for slot in request.texts
            if slot.kind == "system" or slot.role in ("system", "developer")
        ]
        if instructions:
            out["instructions"] = self.digest("\x00".join(instructions).encode())
        tools = request.body.get("tools")
        if tools:
            out["tools"] = self.digest(orjson.dumps(tools, option=orjson.OPT_SORT_KEYS))
        ctx.fingerprints = out
        if not out:
            return
        workflow = self._labels.workflow(ctx.workflow)
        for kind, fp in out.items():
            self._count(workflow, kind, fp, ctx)

    def _count(self, workflow: str, kind: str, fp: str, ctx: RequestContext) -> None:
        key = (workflow, kind)
        seen = self._seen.setdefault(key, {})  # fingerprint -> its label value
        label = seen.get(fp)
        new = label is None
        if label is None:
            labelled = self._labelled.get(key, 0)
            label = fp if labelled < LABELLED_MAX else OTHER
            self._labelled[key] = labelled + (label == fp)
            if len(seen) >= SEEN_MAX:
                seen.pop(next(iter(seen)))
            seen[fp] = label
        if self._metrics is not None:
            self._metrics.fingerprint_requests.add((workflow, kind, label))
            if new:
                self._metrics.new_fingerprints.add((workflow, kind))
        if new and self._access is not None:
            version = ctx.policy.version if ctx.policy is not None else None
            self._access.event(
                "new fingerprint",
                workflow=workflow,
                kind=kind,
                fingerprint=fp,
                policy_version=version,
                request_id=ctx.request_id,
            )
