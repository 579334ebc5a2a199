"""The rollout service without Redis: the abort judged on this instance's own signals and
written to the policies folder, where a restarted instance (or another worker) reads it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from gateway.context import RequestContext
from gateway.observe.metrics import Metrics
from gateway.policy.compile import compile_policy
from gateway.policy.models import Policy
from gateway.policy.registry import PolicyRegistry
from gateway.rollout.flags import FileFlags
from gateway.rollout.service import Rollout
from gateway.rollout.signals import MemorySignals
from gateway.steps import Decision, Step

LIVE: dict[str, Any] = {
    "workflow": "w",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
}
CANDIDATE = {
    **LIVE,
    "description": "next",
    "rollout": {"percent": 50, "abort_on": {"window_s": 60, "min_requests": 30, "error_rate": 0.1}},
}


def service(folder: Path) -> tuple[Rollout, PolicyRegistry, Metrics]:
    live = compile_policy(Policy.model_validate(LIVE), "w.yaml")
    candidate = compile_policy(Policy.model_validate(CANDIDATE), "w.candidate.yaml")
    registry = PolicyRegistry({"w": live}, {"w": candidate})
    metrics = Metrics()
    return (
        Rollout(registry, FileFlags(folder), MemorySignals(), None, metrics, {}, {}, judge_s=0),
        registry,
        metrics,
    )


def finished(registry: PolicyRegistry, arm: str, failed: bool) -> RequestContext:
    ctx = RequestContext("chat", "w")
    current = registry.current
    ctx.policy = current.enforced["w"] if arm == "candidate" else current.policies["w"]
    ctx.decisions.append(Decision(Step.FORWARD, "error" if failed else "allow", None))
    return ctx


async def test_identical_arms_then_a_failing_candidate(tmp_path: Path) -> None:
    rollout, registry, metrics = service(tmp_path)
    rng = random.Random(1)
    for _ in range(400):  # the same 5 % failure rate on both sides
        for arm in ("live", "candidate"):
            rollout.note(finished(registry, arm, rng.random() < 0.05))
    await rollout.poll()
    assert rollout.flags.aborted == frozenset()
    assert rollout.windows["w"]["candidate"]["requests"] == 400

    for _ in range(200):
        rollout.note(finished(registry, "candidate", rng.random() < 0.6))
        rollout.note(finished(registry, "live", rng.random() < 0.05))
    await rollout.poll()
    version = registry.current.enforced["w"].version
    assert rollout.flags.aborted == {("w", version)}
    metrics.flush()
    assert b'gateway_policy_version_requests_total{arm="candidate"' in metrics.render()

    # A restart (or another worker on the folder) obeys the abort from its first read.
    again, _, _ = service(tmp_path)
    await again.refresh()
    assert again.flags.aborted == {("w", version)}
    (row,) = again.status()
    assert row["candidate"]["effective_percent"] == 0
    assert row["candidate"]["aborted"]["signal"] == "error_rate"
