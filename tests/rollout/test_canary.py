"""A canary on live servers: the same sessions get the same version on two instances, the
share is the declared one, raising it keeps everyone already in, and every response, record
and metric names the version that decided."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx

from tests.fakes.upstream import FakeUpstream
from tests.rollout.conftest import Fleet, wait_until

LIVE: dict[str, Any] = {
    "workflow": "canary_app",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["mock-model"]},
    "data": {"deny_terms": ["forbidden-word"]},
}


def candidate(percent: float) -> dict[str, Any]:
    # Stricter: also refuses "secret-plan"; the canary share is enforced under it.
    return {
        **LIVE,
        "description": "next version",
        "data": {"deny_terms": ["forbidden-word", "secret-plan"]},
        "rollout": {"percent": percent, "key": "header:x-session-id"},
    }


def versions(fleet: Fleet, i: int, sessions: list[str]) -> dict[str, str]:
    return {s: fleet.chat(i, "canary_app", "hi", {"x-session-id": s}).version for s in sessions}


def test_sticky_canary_on_two_instances(
    fleets: Callable[..., Fleet], upstream: FakeUpstream
) -> None:
    fleet = fleets(
        upstream,
        {"canary_app.yaml": LIVE, "canary_app.candidate.yaml": candidate(10)},
        shared=False,
    )
    status = fleet.rollout(0, "canary_app")
    live_v, cand_v = status["live_version"], status["candidate"]["version"]
    rng = random.Random(11)
    sessions = [f"conv-{rng.getrandbits(48):012x}" for _ in range(300)]
    one, two = versions(fleet, 0, sessions), versions(fleet, 1, sessions)
    assert one == two  # sticky across instances
    assert set(one.values()) == {live_v, cand_v}
    first = {s for s, v in one.items() if v == cand_v}
    assert 0.04 <= len(first) / len(sessions) <= 0.17

    # The candidate enforces for its share only: its stricter rule refuses there, not elsewhere.
    inside, outside = sorted(first)[0], sorted(set(sessions) - first)[0]
    refused = fleet.chat(0, "canary_app", "the secret-plan", {"x-session-id": inside})
    assert refused.status == 403 and refused.version == cand_v
    passed = fleet.chat(1, "canary_app", "the secret-plan", {"x-session-id": outside})
    assert passed.status == 200 and passed.version == live_v
    # No session header: live, the safe side.
    assert fleet.chat(0, "canary_app", "hi").version == live_v

    # The audit record and the metrics name the deciding version.
    record = next(
        r for r in fleet.records("chat") if r.request_id == refused.headers["x-request-id"]
    )
    assert record.policy_version == cand_v
    metrics = httpx.get(f"{fleet.url(0)}/metrics").text
    assert (
        f'gateway_policy_version_requests_total{{arm="candidate",version="{cand_v}",workflow="canary_app"}}'
        in metrics
    )

    # Raise to 20%: every session already in stays in, on both instances.
    fleet.write_policy("canary_app.candidate.yaml", candidate(20))
    wait_until(
        lambda: all(fleet.rollout(i, "canary_app")["candidate"]["percent"] == 20 for i in (0, 1)),
        timeout=10,
    )
    raised = fleet.rollout(0, "canary_app")["candidate"]["version"]
    after_one, after_two = versions(fleet, 0, sessions), versions(fleet, 1, sessions)
    assert after_one == after_two
    later = {s for s, v in after_one.items() if v == raised}
    assert first <= later
    assert 0.12 <= len(later) / len(sessions) <= 0.28
