"""``gateway report``: a workflow owner's weekly report, from the audit trail.

For the period (``--since``, default the last 7 days) and the period before it, of the same
length: volume, decision mix, top reasons, entities per action, cost and budget burn, latency
percentiles, fallback and review load, new prompt and tool fingerprints, and the behaviour
signals that drifted against the previous period (the definitions of gateway/observe/signals.py,
the same as the live drift scores). Counts only: no subject, no value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.audit.record import AuditRecord, is_traffic
from gateway.config import ModelConfig
from gateway.limits.cost import model_cost, usd
from gateway.observe.signals import Sample, Window, drift_scores, percentile
from gateway.policy.compile import CompiledPolicy

__all__ = ["DRIFT_THRESHOLD", "build_report", "render_markdown"]

DRIFT_THRESHOLD = 3.0  # |score| in standard errors for a signal to be reported as drifted


def _cost(record: AuditRecord, models: Mapping[str, ModelConfig]) -> float:
    if record.actual_usd is not None:
        return record.actual_usd
    if record.model_used is None:
        return 0.0
    micro = model_cost(models.get(record.model_used), record.tokens_in or 0, record.tokens_out or 0)
    return usd(micro)


def _sample(record: AuditRecord, models: Mapping[str, ModelConfig]) -> Sample:
    return Sample.of(
        record.reasons,
        record.entities,
        record.fallback is not None or record.fallback_used,
        record.review,
        record.tokens_out,
        _cost(record, models),
        record.latency_ms / 1000,
    )


def _period(records: Sequence[AuditRecord], models: Mapping[str, ModelConfig]) -> dict[str, Any]:
    entities: dict[str, Counter[str]] = {}
    for r in records:
        for side in r.entities.values():
            for action, counts in side.items():
                entities.setdefault(action, Counter()).update(counts)
    latencies = [r.latency_ms for r in records]
    cost = sum(_cost(r, models) for r in records)
    return {
        "requests": len(records),
        "decisions": dict(Counter(r.decision for r in records).most_common()),
        "top_reasons": dict(Counter(c for r in records for c in r.reasons).most_common(10)),
        "entities": {a: dict(c.most_common()) for a, c in sorted(entities.items())},
        "cost_usd": round(cost, 6),
        "tokens_in": sum(r.tokens_in or 0 for r in records),
        "tokens_out": sum(r.tokens_out or 0 for r in records),
        "latency_ms": {f"p{q}": round(percentile(latencies, q / 100), 3) for q in (50, 90, 95, 99)},
        "fallbacks": sum(1 for r in records if r.fallback is not None or r.fallback_used),
        "reviews": sum(1 for r in records if r.review),
    }


def _fingerprints(records: Iterable[AuditRecord]) -> set[tuple[str, str]]:
    return {(k, v) for r in records for k, v in (r.fingerprints or {}).items()}


def build_report(
    workflow: str | None,
    since: float,
    until: float,
    current: Sequence[AuditRecord],
    previous: Sequence[AuditRecord],
    policies: Mapping[str, CompiledPolicy],
    models: Mapping[str, ModelConfig],
    min_samples: int,
) -> dict[str, Any]:
    """The report of ``current`` (records in [since, until)) against ``previous`` (the period
    of the same length before), per workflow: requests only, not the events the trail also
    holds (review actions, sign-ins, rollout events)."""
    days = max((until - since) / 86400, 1e-9)
    current = [r for r in current if is_traffic(r)]
    previous = [r for r in previous if is_traffic(r)]
    names = [workflow] if workflow else sorted({r.workflow or "none" for r in current})
    out: dict[str, Any] = {"since": since, "until": until, "workflows": {}}
    for name in names:
        now = [r for r in current if (r.workflow or "none") == name]
        before = [r for r in previous if (r.workflow or "none") == name]
        section = _period(now, models)
        section["previous"] = {k: _period(before, models)[k] for k in ("requests", "cost_usd")}
        policy = policies.get(name)
        section["policy_versions"] = sorted({r.policy_version or "none" for r in now})
        section["budgets"] = _budgets(policy, section["cost_usd"], days)
        section["new_fingerprints"] = [
            {"kind": kind, "fingerprint": fp}
            for kind, fp in sorted(_fingerprints(now) - _fingerprints(before))
        ]
        scores = drift_scores(
            Window(samples=(_sample(r, models) for r in now)),
            Window(samples=(_sample(r, models) for r in before)),
            min_samples,
        )
        section["drifted"] = [
            {"signal": s, "now": round(v, 6), "before": round(b, 6), "score": round(z, 2)}
            for s, (v, b, z) in sorted(scores.items())
            if abs(z) >= DRIFT_THRESHOLD
        ]
        out["workflows"][name] = section
    return out


def _budgets(policy: CompiledPolicy | None, cost: float, days: float) -> list[dict[str, Any]]:
    """Workflow-wide budgets: the period's average daily (or monthly) spend against them."""
    limits = policy.source.limits if policy is not None else None
    if limits is None:
        return []
    out: list[dict[str, Any]] = []
    for rule in limits.budget:
        if rule.per not in ("workflow", "global"):
            out.append({"per": rule.per, "note": "per caller: see gateway limits show"})
            continue
        if rule.usd_per_day is not None:
            burn = cost / days / rule.usd_per_day
            out.append({"per": rule.per, "usd_per_day": rule.usd_per_day, "burn": round(burn, 4)})
        if rule.usd_per_month is not None:
            burn = cost / days * 30 / rule.usd_per_month
            out.append(
                {"per": rule.per, "usd_per_month": rule.usd_per_month, "burn": round(burn, 4)}
            )
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for name, s in report["workflows"].items():
        prev = s["previous"]
        lines += [
            f"# Workflow {name}",
            "",
            f"Policy versions: {', '.join(s['policy_versions']) or '-'}",
            "",
            f"- Requests: {s['requests']} (previous period: {prev['requests']})",
            f"- Cost: ${s['cost_usd']:.4f} (previous period: ${prev['cost_usd']:.4f}); "
            f"tokens in {s['tokens_in']}, out {s['tokens_out']}",
            f"- Latency ms: {', '.join(f'{k} {v}' for k, v in s['latency_ms'].items())}",
            f"- Fallbacks: {s['fallbacks']}; flagged for review: {s['reviews']}",
            "",
            "## Decisions",
            "",
            *_table(("decision", "requests"), s["decisions"].items()),
            "",
            "## Top reasons",
            "",
            *_table(("reason", "requests"), s["top_reasons"].items()),
            "",
            "## Entities per action",
            "",
            *_table(
                ("action", "entity", "count"),
                ((a, e, n) for a, c in s["entities"].items() for e, n in c.items()),
            ),
            "",
            "## Budgets",
            "",
            *_table(
                ("per", "budget", "burn"),
                (
                    (
                        b["per"],
                        f"${b['usd_per_day']}/day"
                        if "usd_per_day" in b
                        else f"${b['usd_per_month']}/month"
                        if "usd_per_month" in b
                        else b["note"],
                        f"{b['burn']:.0%}" if "burn" in b else "-",
                    )
                    for b in s["budgets"]
                ),
            ),
            "",
            "## New prompt and tool fingerprints",
            "",
            *_table(
                ("kind", "fingerprint"),
                ((f["kind"], f["fingerprint"]) for f in s["new_fingerprints"]),
            ),
            "",
            "## Drifted signals (against the previous period)",
            "",
            *_table(
                ("signal", "now", "before", "score"),
                ((d["signal"], d["now"], d["before"], d["score"]) for d in s["drifted"]),
            ),
            "",
        ]
    return "\n".join(lines) if lines else "No requests in this period.\n"


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    body = [f"| {' | '.join(str(c) for c in row)} |" for row in rows]
    if not body:
        return ["(none)"]
    return [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}", *body]
