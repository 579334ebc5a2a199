"""Making a version live: ``promote`` (the candidate, once its gates passed) and ``rollback``
(an earlier version), both by writing the policies folder (gateway/tools/policy_files.py).

Each change is recorded before a file is touched, so no live change goes unrecorded: a row
in the history's ``policy_changes`` (who, why, from which version to which, what the gates
found) and a record on the audit hash chain (endpoint ``policy``, the subject is who made the
change; the reason's SHA-256 rather than its free text, as review notes are kept). If the
record cannot be made, nothing changes. Then the replaced version is archived, the new text
written atomically, and a promoted candidate's file removed; every gateway watching the
folder reloads within its poll interval.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.audit import AuditRecord, open_store
from gateway.audit.history import HistoryStore, PolicyChange, PolicyVersion
from gateway.boundary.ner import NerModel
from gateway.config import GatewayConfig
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.tools.history import UnknownVersion, find_version
from gateway.tools.policy_files import (
    ARCHIVE,
    archive,
    archived,
    candidate_path,
    live_path,
    write_atomic,
)
from gateway.tools.promote import Checked
from gateway.yamlsource import ConfigError, Problem

__all__ = [
    "Applied",
    "StaleCandidate",
    "change_record",
    "known_versions",
    "loads_as",
    "promote",
    "rollback",
    "rollback_target",
]


class StaleCandidate(Exception):
    """The candidate or the live file changed while the gates ran (another promotion, an
    edit): what passed is not what is there."""


@contextmanager
def _folder_lock(directory: Path) -> Iterator[None]:
    """One promotion or rollback at a time on this folder (``.history/.lock``, flock)."""
    folder = directory / ARCHIVE
    folder.mkdir(exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class Applied:
    workflow: str
    from_version: str | None
    to_version: str
    archived: Path | None


def change_record(change: PolicyChange) -> AuditRecord:
    """The change as a record on the audit hash chain."""
    return AuditRecord(
        request_id=f"policy-{change.action}-{secrets.token_hex(8)}",
        time=round(change.at, 6), endpoint="policy", workflow=change.workflow,
        policy_version=change.to_version, mode=None, subject=change.by,
        roles=[], team=None, key_id=None, auth_method="cli",
        model_requested=None, model_used=None, fallback_used=False, decision=change.action,
        reasons=[], status=200, streamed=False, stream_end=None, upstream_status=None,
        attempts=0, retries=0, latency_ms=0.0, upstream_ms=None, tokens_in=None,
        tokens_out=None, reserved_usd=None, actual_usd=None, upstream_store=None,
        policy_change={
            "action": change.action,
            "from": change.from_version,
            "to": change.to_version,
            "reason_sha256": hashlib.sha256(change.reason.encode()).hexdigest(),
        },
    )  # fmt: skip


async def _record(
    config: GatewayConfig,
    history: HistoryStore,
    change: PolicyChange,
    versions: list[PolicyVersion],
) -> None:
    """History first, then the chain; raises HistoryError or SinkError, before any file."""
    await history.record_versions(versions)
    await history.record_change(change)
    store = open_store(config, os.environ)
    try:
        await store.write([change_record(change)])
    finally:
        await store.close()


async def promote(
    config: GatewayConfig,
    checked: Checked,
    history: HistoryStore,
    *,
    by: str,
    reason: str,
) -> Applied:
    """Make the checked candidate live; raises StaleCandidate, HistoryError or SinkError
    (then nothing changed)."""
    assert checked.live is not None
    assert checked.candidate is not None
    assert not checked.refused
    directory = config.path(config.policies_dir)
    with _folder_lock(directory):
        return await _promote(config, checked, history, directory, by, reason)


async def _promote(
    config: GatewayConfig,
    checked: Checked,
    history: HistoryStore,
    directory: Path,
    by: str,
    reason: str,
) -> Applied:
    assert checked.live is not None
    assert checked.candidate is not None
    workflow, live, candidate = checked.workflow, checked.live, checked.candidate
    source = candidate_path(directory, workflow)
    for path, text in ((source, checked.text), (live_path(directory, workflow), checked.live_text)):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise StaleCandidate(f"{path.name} changed while the gates ran: run promote again")
    live_text = checked.live_text
    at = time.time()
    change = PolicyChange(
        workflow, at, "promote", live.version, candidate.version, by, reason,
        {"gates": {g.name: g.summary for g in checked.gates}},
    )  # fmt: skip
    owner = candidate.source.owner
    await _record(
        config, history, change,
        [
            PolicyVersion(workflow, live.version, live_text, f"{workflow}.yaml",
                          live.source.owner, at),
            PolicyVersion(workflow, candidate.version, checked.text, source.name, owner, at),
        ],
    )  # fmt: skip
    kept = archive(directory, workflow, live.version, live_text)
    write_atomic(live_path(directory, workflow), checked.text)
    source.unlink(missing_ok=True)
    return Applied(workflow, live.version, candidate.version, kept)


async def known_versions(
    directory: Path, workflow: str, history: HistoryStore
) -> list[PolicyVersion]:
    """Every version with a text to restore: the database history's, then the archive's
    (named ``.history/W/...``) for those the database does not hold."""
    stored = await history.versions(workflow)
    have = {v.version for v in stored}
    folder = directory / ARCHIVE / workflow
    for version, text in archived(directory, workflow).items():
        if version not in have:
            at = (folder / (version.replace(":", "-") + ".yaml")).stat().st_mtime
            stored.append(PolicyVersion(workflow, version, text, f"{ARCHIVE}/{workflow}", "", at))
    return stored


async def rollback_target(
    directory: Path, live: CompiledPolicy, history: HistoryStore, to: str | None
) -> PolicyVersion:
    """The version ``to`` names (a prefix will do), else the one the current version
    replaced: the ``from`` of the change that made it live, else the newest other version
    loaded from ``W.yaml``. Raises UnknownVersion."""
    workflow = live.name
    versions = await known_versions(directory, workflow, history)
    if to is not None:
        return find_version(versions, to)
    for change in reversed(await history.changes(workflow)):
        if change.to_version == live.version and change.from_version:
            return find_version(versions, change.from_version)
    earlier = [
        v
        for v in versions
        if v.version != live.version and v.source in (f"{workflow}.yaml", f"{ARCHIVE}/{workflow}")
    ]
    if not earlier:
        raise UnknownVersion(f"no version of {workflow} before {live.version} is recorded")
    return max(earlier, key=lambda v: v.loaded_at)


def loads_as(
    config: GatewayConfig, directory: Path, workflow: str, text: str, ner: NerModel | None
) -> CompiledPolicy:
    """``text`` as ``W.yaml`` in a copy of the folder (the files it names included), so a
    version restored is one today's gateway.yaml still accepts; raises ConfigError."""
    with tempfile.TemporaryDirectory(prefix="gateway-rollback-") as tmp:
        copy = Path(tmp) / "policies"
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns(ARCHIVE, "*.candidate.yaml"))
        (copy / f"{workflow}.yaml").write_text(text, encoding="utf-8")
        try:
            loaded = load_policies(copy, config.models, ner)
        except ConfigError as exc:
            raise ConfigError(
                [Problem(p.file.replace(str(copy), str(directory)), p.line, p.message)
                 for p in exc.problems]
            ) from None  # fmt: skip
        return loaded[workflow]


async def rollback(
    config: GatewayConfig,
    live: CompiledPolicy,
    target: PolicyVersion,
    history: HistoryStore,
    ner: NerModel | None,
    *,
    by: str,
    reason: str,
) -> Applied:
    """Make ``target``'s text live again; raises ConfigError (it no longer loads),
    HistoryError or SinkError, and then nothing changed."""
    directory = config.path(config.policies_dir)
    workflow = live.name
    restored = loads_as(config, directory, workflow, target.text, ner)
    path = live_path(directory, workflow)
    with _folder_lock(directory):
        live_text = path.read_text(encoding="utf-8")
        if loads_as(config, directory, workflow, live_text, ner).version != live.version:
            raise StaleCandidate(f"{path.name} changed meanwhile: run rollback again")
        return await _rollback(config, live, target, restored, history, live_text, by, reason)


async def _rollback(
    config: GatewayConfig,
    live: CompiledPolicy,
    target: PolicyVersion,
    restored: CompiledPolicy,
    history: HistoryStore,
    live_text: str,
    by: str,
    reason: str,
) -> Applied:
    directory = config.path(config.policies_dir)
    workflow = live.name
    path = live_path(directory, workflow)
    at = time.time()
    detail: Mapping[str, Any] = (
        {}
        if restored.version == target.version
        else {"note": f"the text now hashes to {restored.version}: a file it names changed"}
    )
    change = PolicyChange(
        workflow, at, "rollback", live.version, restored.version, by, reason, dict(detail)
    )
    await _record(
        config, history, change,
        [PolicyVersion(workflow, live.version, live_text, path.name, live.source.owner, at)],
    )  # fmt: skip
    kept = archive(directory, workflow, live.version, live_text)
    write_atomic(path, target.text)
    return Applied(workflow, live.version, restored.version, kept)
