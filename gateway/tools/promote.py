"""Promotion gates: ``W.candidate.yaml`` becomes the live ``W.yaml`` only when every gate passes.

The gates run cheapest first and the first refusal stops the promotion, naming its gate:

1. ``validate``: the folder lints without an error (other workflows' candidates aside), the
   candidate among it, and it differs from live;
2. ``policy_test``: the cases for W in ``policies/tests/`` pass with the candidate as W;
3. ``evaluation``: the evaluation set (the candidate's, else live's) meets its target; the
   run is recorded like any ``gateway eval``;
4. ``replay``: the recorded traffic of the window, re-decided under the candidate
   (gateway/tools/replay.py), changes no decision, or the operator accepts the changes;
5. ``canary``: with a canary declared (``rollout.percent`` > 0 and ``abort_on``), the
   candidate's signals over the window's records stay within the thresholds of live's,
   with at least ``min_requests`` on each side; no canary passes as "no canary".

Writing is gateway/tools/changes.py.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit import AuditRecord, Query, SinkError, open_store
from gateway.audit.history import HistoryStore
from gateway.boundary.ner import NerModel
from gateway.config import GatewayConfig
from gateway.policy.candidates import candidate_files
from gateway.policy.compile import CompiledPolicy
from gateway.tools.canary_signals import breaches, signals_of
from gateway.tools.cases import case_files, load_cases
from gateway.tools.evalset import load_set
from gateway.tools.evaluate import regression, run_set
from gateway.tools.lint import LintReport, lint_policies
from gateway.tools.offline import OfflineGateway
from gateway.tools.policy_files import ARCHIVE, candidate_path, live_path
from gateway.tools.replay import replay
from gateway.yamlsource import ConfigError

__all__ = ["Checked", "Gate", "check_gates", "recorded"]

_SHOWN = 50  # changed decisions listed under a refusal; the count covers them all


@dataclass(frozen=True, slots=True)
class Gate:
    name: str  # validate | policy_test | evaluation | replay | canary
    passed: bool
    summary: str
    lines: tuple[str, ...] = ()


@dataclass(slots=True)
class Checked:
    """The gates run so far; ``candidate`` and ``text`` are what passed ``validate``, and
    ``live_text`` the live file they were checked against."""

    workflow: str
    gates: list[Gate] = field(default_factory=list)
    live: CompiledPolicy | None = None
    candidate: CompiledPolicy | None = None
    text: str = ""
    live_text: str = ""

    @property
    def refused(self) -> Gate | None:
        return next((g for g in self.gates if not g.passed), None)


async def check_gates(
    config: GatewayConfig,
    workflow: str,
    history: HistoryStore,
    ner: NerModel | None,
    *,
    since: float,
    accept_changes: bool,
    offline: bool,
) -> Checked:
    """Run the gates in order until one refuses."""
    directory = config.path(config.policies_dir)
    checked = Checked(workflow)
    live_set = _validate(config, directory, checked, ner)
    if checked.refused or live_set is None:
        return checked
    assert checked.live is not None
    assert checked.candidate is not None
    policies = {**live_set, workflow: checked.candidate}
    checked.gates.append(await _policy_test(config, directory, workflow, policies))
    if checked.refused:
        return checked
    checked.gates.append(await _evaluation(config, directory, checked, policies, history, offline))
    if checked.refused:
        return checked
    try:
        records = await recorded(config, workflow, since)
    except SinkError as exc:
        checked.gates.append(Gate("replay", False, f"the audit trail is unreadable: {exc}"))
        return checked
    checked.gates.append(_replay(checked, live_set, records, accept_changes))
    if checked.refused:
        return checked
    checked.gates.append(_canary(checked.candidate, checked.live, records))
    return checked


def _validate(
    config: GatewayConfig, directory: Path, checked: Checked, ner: NerModel | None
) -> dict[str, CompiledPolicy] | None:
    workflow = checked.workflow
    path = candidate_path(directory, workflow)
    try:
        checked.text = path.read_text(encoding="utf-8")
        checked.live_text = live_path(directory, workflow).read_text(encoding="utf-8")
    except OSError as exc:
        checked.gates.append(Gate("validate", False, f"{exc.filename}: {exc.strerror}"))
        return None
    report = _lint_without_other_candidates(config, directory, path.name, ner)
    errors = [i for i in report.issues if i.severity == "error"]
    if errors:
        lines = tuple(f"{i.file}:{i.line}: {i.message} ({i.code})" for i in errors)
        checked.gates.append(
            Gate("validate", False, f"{len(errors)} error(s) in the policies folder", lines)
        )
        return None
    live, candidate = report.policies.get(workflow), report.candidates.get(workflow)
    if live is None or candidate is None:
        checked.gates.append(Gate("validate", False, f"no live policy {workflow}.yaml"))
        return None
    if candidate.version == live.version:
        checked.gates.append(
            Gate("validate", False, f"the candidate is the live version {live.version}")
        )
        return None
    checked.live, checked.candidate = live, candidate
    checked.gates.append(
        Gate("validate", True, f"candidate {candidate.version} validates (live {live.version})")
    )
    return dict(report.policies)


def _lint_without_other_candidates(
    config: GatewayConfig, directory: Path, candidate: str, ner: NerModel | None
) -> LintReport:
    """The folder's lint without other workflows' candidates: one never goes live by this
    promotion, so a broken one does not hold it back. Linted in a copy (the schema files
    included), the copy's paths given back as the folder's."""
    others = {p.name for p in candidate_files(directory)} - {candidate}
    with tempfile.TemporaryDirectory(prefix="gateway-promote-") as tmp:
        copy = Path(tmp) / directory.name
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns(ARCHIVE, *others))
        report = lint_policies(copy, config, ner)

    def back(path: str) -> str:
        return path.replace(str(copy), str(directory))

    return LintReport(
        [dataclasses.replace(i, file=back(i.file), message=back(i.message)) for i in report.issues],
        {n: dataclasses.replace(p, path=back(p.path)) for n, p in report.policies.items()},
        {n: dataclasses.replace(p, path=back(p.path)) for n, p in report.candidates.items()},
    )


async def _policy_test(
    config: GatewayConfig,
    directory: Path,
    workflow: str,
    policies: dict[str, CompiledPolicy],
) -> Gate:
    try:
        cases = [
            c for c in load_cases(case_files(directory), set(policies)) if c.workflow == workflow
        ]
    except ConfigError as exc:
        lines = tuple(str(p) for p in exc.problems)
        return Gate("policy_test", False, "the test files do not load", lines)
    if not cases:
        return Gate("policy_test", False, f"no cases for {workflow} in {directory / 'tests'}")
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gateway-promote-") as scratch:
        callers = [c.case.principal for c in cases]
        async with OfflineGateway(config, policies, Path(scratch), callers) as gateway:
            for located in cases:
                case = located.case
                observed = await gateway.run(
                    workflow, case.principal, case.request, case.upstream_answer
                )
                failed += [
                    f"{located.where} {case.name}: {f}" for f in observed.failures(case.expect)
                ]
    if failed:
        return Gate(
            "policy_test", False, f"cases for {workflow} fail under the candidate", tuple(failed)
        )
    return Gate("policy_test", True, f"{len(cases)} case(s) for {workflow} pass")


async def _evaluation(
    config: GatewayConfig,
    directory: Path,
    checked: Checked,
    policies: dict[str, CompiledPolicy],
    history: HistoryStore,
    offline: bool,
) -> Gate:
    assert checked.candidate is not None
    assert checked.live is not None
    declared = checked.candidate.source.evaluation or checked.live.source.evaluation
    if declared is None:
        return Gate("evaluation", True, "no evaluation set declared")
    try:
        cases = load_set(directory, declared.set)
    except ConfigError as exc:
        return Gate(
            "evaluation", False, f"{declared.set} does not load", tuple(map(str, exc.problems))
        )
    report = await run_set(
        config, policies, checked.candidate, declared, cases,
        candidate=True, model=None, repeat=1, offline=offline,
    )  # fmt: skip
    worse = regression(report, await history.eval_runs(checked.workflow, 50))
    await history.record_eval(report.as_run())
    summary = (
        f"{declared.metric} {report.value:.3f} ({report.passed}/{len(report.results)}) "
        f"against target {declared.target:.3f}"
    )
    notes = (f"regression: {worse}",) if worse else ()
    if not report.met:
        failing = tuple(
            f"line {r.line} {r.name}: {'; '.join(r.failures)}" for r in report.results if r.failures
        )
        return Gate("evaluation", False, summary + ": below target", failing + notes)
    return Gate("evaluation", True, summary, notes)


def _replay(
    checked: Checked,
    live: dict[str, CompiledPolicy],
    records: Sequence[AuditRecord],
    accept: bool,
) -> Gate:
    assert checked.candidate is not None
    report = replay(records, {checked.workflow: checked.candidate}, live).get(checked.workflow)
    if report is None or not report.records:
        return Gate("replay", True, "no recorded traffic in the window: nothing re-decided")
    c = report.counts
    summary = (
        f"{report.records} records: newly blocked {c['newly_blocked']}, newly allowed "
        f"{c['newly_allowed']}, action changes {c['action_change']}, undecidable "
        f"{c['undecidable']}"
    )
    lines = tuple(f"note: {n}" for n in report.notes) + tuple(
        f"{r.change} {r.request_id} {r.subject or '-'}: {r.live} -> {r.candidate} {r.detail}"
        for r in report.changed[:_SHOWN]
    )
    if len(report.changed) > _SHOWN:
        lines += (f"... and {len(report.changed) - _SHOWN} more",)
    if report.changed and not accept:
        return Gate(
            "replay", False, summary + ": review the changes and pass --accept-changes", lines
        )
    accepted = f"; {len(report.changed)} change(s) accepted" if report.changed else ""
    return Gate("replay", True, summary + accepted, lines)


def _canary(
    candidate: CompiledPolicy, live: CompiledPolicy, records: Sequence[AuditRecord]
) -> Gate:
    rollout = candidate.source.rollout
    if rollout is None or rollout.percent == 0:
        return Gate("canary", True, "no canary")
    abort_on = rollout.abort_on
    if abort_on is None:
        return Gate("canary", True, f"canary at {rollout.percent}% declares no abort_on thresholds")
    requests = [r for r in records if r.endpoint not in ("admin", "review", "policy", "rollout")]
    mine = signals_of(r for r in requests if r.policy_version == candidate.version)
    theirs = signals_of(r for r in requests if r.policy_version == live.version)
    counts = f"{mine.requests} candidate and {theirs.requests} live requests"
    if min(mine.requests, theirs.requests) < abort_on.min_requests:
        return Gate(
            "canary", False,
            f"{counts} in the window, fewer than min_requests {abort_on.min_requests}: "
            "not enough observed to judge",
        )  # fmt: skip
    over = breaches(mine, theirs, abort_on)
    if over:
        return Gate(
            "canary", False, f"over the abort_on thresholds ({counts})", tuple(map(str, over))
        )
    return Gate("canary", True, f"within the abort_on thresholds over {counts}")


async def recorded(config: GatewayConfig, workflow: str, since: float) -> list[AuditRecord]:
    """The records of ``workflow`` since ``since`` (epoch seconds); raises SinkError."""
    store = open_store(config, {})
    out: list[AuditRecord] = []
    try:
        query = Query(workflow=workflow, since=since, limit=1000)
        while True:
            rows = await store.query(query)
            out += [r for row in rows if (r := row.record()) is not None]
            if len(rows) < query.limit:
                return out
            query = Query(workflow=workflow, since=since, after_seq=rows[-1].seq, limit=1000)
    finally:
        await store.close()
