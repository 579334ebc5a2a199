"""``gateway policy test`` results for the policies page: the case files
(``policies/tests/*.yaml``) run through the offline pipeline (gateway/tools/offline.py)
against the policies loaded now, cached by what they ran on.

A run is keyed by every loaded workflow's version and the case files' content: a page view
starts one only when that key changed since the last run (a reload, an edited case file),
waits a few seconds for it, and otherwise shows the last results while it finishes. A page
view never runs the cases again for versions they already ran on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.policy.compile import CompiledPolicy
from gateway.tools.cases import LocatedCase, case_files, load_cases
from gateway.tools.offline import OfflineGateway
from gateway.yamlsource import ConfigError

__all__ = ["CaseResult", "PolicyTests", "TestRun"]

log = logging.getLogger("gateway.console")

_WAIT_S = 5.0  # how long a page view waits for a run it started before showing "running"


@dataclass(frozen=True, slots=True)
class CaseResult:
    workflow: str
    name: str
    where: str
    failures: list[str]


@dataclass(slots=True)
class TestRun:
    """One run: the versions it ran on, its results, or the problems that stopped it."""

    versions: dict[str, str]
    at: float = field(default_factory=time.time)
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, workflow: str) -> list[CaseResult]:
        return [r for r in self.results if r.workflow == workflow]


class PolicyTests:
    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._folder = config.path(config.policies_dir)
        self._last: TestRun | None = None
        self._key: str | None = None
        self._running: asyncio.Task[TestRun] | None = None

    async def current(self, policies: Mapping[str, CompiledPolicy]) -> tuple[TestRun | None, bool]:
        """The results for ``policies`` (and whether a newer run is still going)."""
        files = case_files(self._folder)
        key = self._key_of(policies, files)
        if key != self._key and self._running is None:
            self._key = key
            self._running = asyncio.create_task(
                self._run(dict(policies), files), name="console-policy-test"
            )
            self._running.add_done_callback(self._done)
        if self._running is not None:
            await asyncio.wait([self._running], timeout=_WAIT_S)
        return self._last, self._running is not None

    def _done(self, task: asyncio.Task[TestRun]) -> None:
        self._running = None
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:  # shown, not retried until the key changes
            log.error("policy test run for the console failed: %r", exc)
            versions = self._last.versions if self._last else {}
            self._last = TestRun(versions, problems=[f"the run failed: {type(exc).__name__}"])
            return
        self._last = task.result()

    @staticmethod
    def _key_of(policies: Mapping[str, CompiledPolicy], files: list[Path]) -> str:
        digest = hashlib.sha256()
        for name, policy in sorted(policies.items()):
            digest.update(f"{name}\0{policy.version}\0".encode())
        for path in files:
            digest.update(str(path).encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"(unreadable)")
        return digest.hexdigest()

    async def _run(self, policies: dict[str, CompiledPolicy], files: list[Path]) -> TestRun:
        run = TestRun({name: p.version for name, p in policies.items()})
        try:
            cases = load_cases(files, set(policies))
        except ConfigError as exc:
            run.problems = [str(p) for p in exc.problems]
            return run
        if cases:
            run.results = await _run_cases(self._config, policies, cases)
        return run


async def _run_cases(
    config: GatewayConfig, policies: dict[str, CompiledPolicy], cases: list[LocatedCase]
) -> list[CaseResult]:
    out = []
    with tempfile.TemporaryDirectory(prefix="gateway-console-test-") as scratch:
        callers = [c.case.principal for c in cases]
        async with OfflineGateway(config, policies, Path(scratch), callers) as gateway:
            for located in cases:
                case = located.case
                observed = await gateway.run(
                    located.workflow, case.principal, case.request, case.upstream_answer
                )
                out.append(
                    CaseResult(
                        located.workflow, case.name, located.where, observed.failures(case.expect)
                    )
                )
    return out
