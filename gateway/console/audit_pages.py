"""The explorer (the audit trail with the CLI's filters, keyset pages), one record with its
chain status, the overview per workflow, and the loaded policies.

A record never holds a raw value (gateway/audit/record.py): what these pages show of content is
what ``retention.content: masked`` kept, as it left for the model.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Mapping
from typing import Any

from gateway.audit.chain import StoredRow
from gateway.audit.sink import Query
from gateway.console.html import esc, link, table, when
from gateway.console.overview import WorkflowStats
from gateway.console.policy_tests import TestRun
from gateway.errors import REASONS
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicySet, ReloadError
from gateway.policy.reload import PolicyVersion
from gateway.tools.explain import Explanation

__all__ = ["explain_page", "explorer_page", "overview_page", "policies_page", "record_page"]

FILTERS = ("workflow", "decision", "reason", "subject", "entity", "since", "until")


def explorer_page(rows: list[StoredRow], params: Mapping[str, str], more: bool) -> str:
    fields = "".join(
        f'<label>{name}<input name="{name}" value="{esc(params.get(name, ""))}"></label>'
        for name in FILTERS
    )
    filters = (
        f'<form method="get" action="explorer" class="filters">{fields}'
        '<button type="submit">Filter</button></form>'
    )
    out = []
    for row in rows:
        out.append(
            [
                link("record", str(row.seq), seq=row.seq),
                when(row.time),
                esc(row.workflow),
                esc(row.decision),
                esc(row.reasons.strip()),
                esc(row.subject),
                esc(row.entity_types.strip()),
            ]
        )
    if not out:
        return filters + '<p class="muted">No record matches.</p>'
    headers = ["seq", "time", "workflow", "decision", "reasons", "subject", "entities"]
    page = filters + table(headers, out, "records")
    if more:
        kept = {k: params[k] for k in FILTERS if params.get(k)}
        page += f"<p>{link('explorer', 'Next page', **kept, after=rows[-1].seq)}</p>"
    return page


def record_page(
    row: StoredRow,
    chain_status: tuple[bool, str],
    policy: CompiledPolicy | None,
    kept: PolicyVersion | None = None,
) -> str:
    """``kept``: the record's policy version from the policy history, when it is not the one
    loaded now."""
    record: dict[str, Any] = json.loads(row.body) if row.body else {}
    ok, said = chain_status
    facts = [
        ("seq", esc(row.seq)),
        ("time", when(row.time)),
        ("request id", esc(row.request_id)),
        ("workflow", esc(row.workflow)),
        ("decision", esc(row.decision)),
        ("reasons", esc(", ".join(record.get("reasons", [])))),
        ("rules", esc(", ".join(record.get("rules", [])))),
        ("status", esc(record.get("status"))),
        ("subject", esc(row.subject)),
        ("roles", esc(", ".join(record.get("roles", [])))),
        (
            "model",
            esc(f"{record.get('model_requested')} -> {record.get('model_used')}"),
        ),
        ("policy version", esc(record.get("policy_version"))),
        ("latency", esc(f"{record.get('latency_ms')} ms")),
        ("cost", esc(record.get("actual_usd"))),
        ("chain", f'<span class="{"ok" if ok else "bad"}">{esc(said)}</span>'),
    ]
    body = table(["", ""], [[esc(k), v] for k, v in facts], "facts")
    body += _steps(record)
    entities = record.get("entities") or {}
    rows = [
        [esc(side), esc(action), esc(entity), esc(n)]
        for side, actions in entities.items()
        for action, counts in actions.items()
        for entity, n in counts.items()
    ]
    if rows:
        body += "<h2>Entities per action</h2>" + table(["side", "action", "entity", "count"], rows)
    if (candidate := record.get("candidate")) is not None:
        body += (
            "<h2>Candidate verdict (shadow)</h2><pre>"
            + esc(json.dumps(candidate, indent=2))
            + "</pre>"
        )
    if record.get("review_action"):
        body += (
            "<h2>Review</h2><pre>" + esc(json.dumps(record["review_action"], indent=2)) + "</pre>"
        )
    content = record.get("content")
    if content:
        text = "\n\n".join(f"[{m['role']}] {m['text']}" for m in content.get("request", []))
        body += f'<h2>Content as it left (masked)</h2><pre class="content">{esc(text)}</pre>'
        body += _explain(record, content.get("request", []), row.seq)
    else:
        body += (
            '<p class="muted">No content kept (retention.content is none, or the request '
            "was refused before it left).</p>"
        )
    if policy is not None and policy.version == record.get("policy_version"):
        source = policy.source.model_dump_json(indent=2, exclude_defaults=True)
        body += f"<h2>Policy {esc(policy.version)} (loaded now)</h2><pre>{esc(source)}</pre>"
    elif kept is not None:
        body += (
            f"<h2>Policy {esc(kept.version)} (no longer loaded: {esc(kept.source)} as the "
            f"history kept it, loaded {when(kept.loaded_at)})</h2><pre>{esc(kept.text)}</pre>"
        )
    elif record.get("policy_version"):
        body += (
            '<p class="muted">That policy version is no longer loaded, and the policy '
            "history does not hold it.</p>"
        )
    return body


def _explain(record: dict[str, Any], messages: list[dict[str, str]], seq: int) -> str:
    """The command that re-runs this request's masked content through the pipeline offline."""
    users = [m["text"] for m in messages if m.get("role") == "user"]
    if not users or not record.get("workflow"):
        return ""
    argv = ["gateway", "policy", "explain", "--workflow", record["workflow"],
            "--subject", record.get("subject") or "unknown",
            "--roles", ",".join(record.get("roles") or []) or "none"]  # fmt: skip
    if record.get("model_requested"):
        argv += ["--model", record["model_requested"]]
    command = shlex.join([*argv, "--message", users[-1]])
    run = link("explain", "Run explain on the masked content now", seq=seq)
    return (
        f'<h2>Re-run explain on it</h2><p class="explain-link">{run} (under the policy loaded '
        f'now), or from a shell:</p><pre class="explain">{esc(command)}</pre>'
    )


def _steps(record: dict[str, Any]) -> str:
    """Every reason code the steps gave, in their order, with the step that gave it (its
    prefix), the status and the catalogue's meaning; then the boundary's rules."""
    rows = []
    for code in record.get("reasons", []):
        reason = REASONS.get(code)
        step = code.split(".", 1)[0]
        rows.append([esc(step), esc(code), esc(reason.status if reason else ""),
                     esc(reason.message if reason else "")])  # fmt: skip
    out = "<h2>Steps</h2>"
    if rows:
        out += table(["step", "reason", "status", "what it means"], rows, "steps")
    else:
        out += '<p class="muted">Every step allowed it unchanged.</p>'
    if record.get("rules"):
        out += f"<p>Rules that matched: {esc(', '.join(record['rules']))}</p>"
    if record.get("fallback"):
        out += (
            f"<p>Answered by the fallback {esc(record['fallback'])}, set off by "
            f"{esc(record.get('fallback_reason'))}.</p>"
        )
    return out


def explain_page(seq: int, e: Explanation) -> str:
    """``gateway policy explain`` on a record's masked content: what each step decides now."""
    facts = [
        ("record", link("record", str(seq), seq=seq)),
        ("workflow", esc(e.workflow)),
        ("policy", esc(f"{e.policy_version} ({e.policy_file})")),
        ("caller", esc(f"{e.subject} [{', '.join(e.roles)}]")),
        ("decision", esc(f"{e.decision} (status {e.status})")),
        ("reasons", esc(", ".join(e.reasons))),
    ]
    body = table(["", ""], [[esc(k), v] for k, v in facts], "facts")
    rows = [[esc(s.step), esc(s.outcome), esc(s.code or ""), esc(s.rule)] for s in e.steps]
    body += "<h2>Steps</h2>" + table(["step", "decision", "code", "rule"], rows, "steps")
    if e.findings:
        found = [[esc(f.entity), esc(f.rule), esc(f"{f.score:.2f}"), esc(f.action),
                  esc(f.preview)] for f in e.findings]  # fmt: skip
        body += "<h2>Findings (previews, never values)</h2>"
        body += table(["entity", "rule", "score", "action", "preview"], found, "findings")
    if e.sent is not None:
        body += f"<h2>As it would leave</h2><pre>{esc(chr(10).join(e.sent))}</pre>"
    return body


def overview_page(stats: list[WorkflowStats], hours: float, start: float, behind: int = 0) -> str:
    """``behind``: five-minute buckets not rolled up yet, left out of the figures."""
    chooser = (
        '<form method="get" action="overview" class="filters"><label>period (hours)'
        f'<input name="hours" value="{esc(hours)}"></label>'
        '<button type="submit">Show</button></form>'
        f'<p class="muted">Since {when(start)} (five-minute buckets).</p>'
    )
    if behind:
        chooser += (
            f'<p class="behind">{behind} five-minute buckets of this period (and the one '
            "before it, for drift) are still being rolled up in the background: their "
            "records are not in these figures yet. Reload in a while.</p>"
        )
    if not stats:
        return chooser + '<p class="muted">No traffic in the period.</p>'
    rows = []
    for s in stats:
        r = s.rollup
        budget = f" / {s.budget_usd:g} per day" if s.budget_usd else ""
        backlog = "0"
        if s.backlog:
            backlog = f"{s.backlog} ({s.overdue} overdue, oldest {s.oldest_age_s / 60:.0f} min)"
        rows.append(
            [
                esc(s.workflow),
                esc(r.requests),
                esc(_mix(r.decisions)),
                esc(_mix(dict(r.reasons.most_common(5)))),
                esc(_mix(r.entities)),
                esc(f"{r.cost_usd:.4f}{budget}"),
                esc(f"{s.p50_ms:.1f} / {s.p95_ms:.1f}"),
                esc(f"{s.fallback_rate:.1%}"),
                f'<span class="overdue">{esc(backlog)}</span>' if s.overdue else esc(backlog),
                _drift(s.drift),
            ]
        )
    headers = ["workflow", "requests", "decisions", "top reasons", "entities (action:type)",
               "cost USD", "latency p50 / p95 ms", "fallback rate", "review backlog",
               "drift (vs the period before)"]  # fmt: skip
    return chooser + table(headers, rows, "overview")


def _drift(signals: list[tuple[str, float, float, float]]) -> str:
    if not signals:
        return '<span class="muted">none</span>'
    return "<br>".join(
        f'<span class="drift">{esc(name)} {now:.1%} (was {was:.1%}, z {z:+.1f})</span>'
        for name, now, was, z in signals
    )


def _mix(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def policies_page(
    current: PolicySet,
    error: ReloadError | None,
    verdicts: Mapping[str, Counter[str]],
    tests: TestRun | None,
    running: bool,
) -> str:
    """The loaded policies with their ``policy test`` results, the candidates with their shadow
    verdicts against live (``verdicts``: per workflow, from the overview's rollups), and the
    last reload error."""
    rows = [
        [
            esc(name),
            esc(p.version),
            esc(p.source.owner),
            esc(p.source.mode),
            esc(p.path),
            '<span class="ok">valid (loaded)</span>',
            _tested(tests, name, p.version, running),
        ]
        for name, p in sorted(current.policies.items())
    ]
    headers = ["workflow", "version", "owner", "mode", "file", "validation", "policy test"]
    body = table(headers, rows, "policies")
    body += _candidates(current, verdicts)
    body += _test_details(tests, running)
    if error is not None:
        which = "candidates" if error.candidates else "the live set"
        problems = "\n".join(error.problems)
        body += (
            f'<h2 class="bad">Last reload refused ({esc(which)}) at</h2>{when(error.at)}'
            f"<pre>{esc(problems)}</pre>"
        )
    else:
        body += '<p class="muted">No reload error since start.</p>'
    return body


def _tested(tests: TestRun | None, workflow: str, version: str, running: bool) -> str:
    if tests is None or tests.versions.get(workflow) != version:
        return '<span class="muted">running</span>' if running else ""
    if tests.problems:
        return '<span class="bad">case files refused</span>'
    results = tests.of(workflow)
    if not results:
        return '<span class="muted">no cases</span>'
    failed = sum(1 for r in results if r.failures)
    css = "bad" if failed else "ok"
    return f'<span class="{css}">{len(results) - failed} passed, {failed} failed</span>'


def _test_details(tests: TestRun | None, running: bool) -> str:
    if tests is None:
        return '<p class="muted">policy test: running.</p>' if running else ""
    out = f'<h2>Policy test</h2><p class="muted">Run {when(tests.at)}'
    out += " (a newer run is going).</p>" if running else ".</p>"
    if tests.problems:
        return out + f'<pre class="bad">{esc(chr(10).join(tests.problems))}</pre>'
    failed = [r for r in tests.results if r.failures]
    if failed:
        rows = [[esc(r.workflow), esc(r.name), esc(r.where), esc("; ".join(r.failures))]
                for r in failed]  # fmt: skip
        out += table(["workflow", "case", "where", "failures"], rows, "test-failures")
    return out


def _candidates(current: PolicySet, verdicts: Mapping[str, Counter[str]]) -> str:
    if not current.candidates:
        return '<p class="muted">No candidate loaded.</p>'
    rows = []
    for name, c in sorted(current.candidates.items()):
        seen: Counter[str] = Counter()
        moves: Counter[str] = Counter()
        for key, n in verdicts.get(name, Counter()).items():
            version, live, decision, same = key.split(" ")
            if version == c.version:
                seen[same] += n
                if same == "differs":
                    moves[f"{live} -> {decision}"] += n
        judged = seen["same"] + seen["differs"]
        rows.append(
            [
                esc(name),
                esc(c.version),
                esc(c.path),
                esc(judged),
                esc(seen["same"]),
                f'<span class="{"bad" if seen["differs"] else "ok"}">{esc(seen["differs"])}</span>',
                esc(_mix(moves)),
            ]
        )
    headers = ["workflow", "candidate", "file", "judged (24 h)", "same as live", "differs",
               "live -> candidate"]  # fmt: skip
    return "<h2>Candidates</h2>" + table(headers, rows, "candidates")


def query_of(params: Mapping[str, str], limit: int) -> Query:
    """The explorer's filters as an audit query (raises ValueError on a bad time or cursor)."""
    from gateway.audit.admin import parse_time

    since, until = params.get("since"), params.get("until")
    return Query(
        workflow=params.get("workflow") or None,
        decision=params.get("decision") or None,
        reason=params.get("reason") or None,
        subject=params.get("subject") or None,
        entity=params.get("entity") or None,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
        after_seq=int(params["after"]) if params.get("after") else None,
        limit=limit,
    )
