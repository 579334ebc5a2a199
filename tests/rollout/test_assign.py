"""The one assignment: sticky buckets, the canary share, monotone growth, the safe side."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.record import build_record
from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.policy.registry import PolicySet
from gateway.rollout.assign import BUCKETS, Flags, assign, bucket
from gateway.tools.replay import replay

LIVE: dict[str, Any] = {
    "workflow": "chat",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
}


def compiled(extra: dict[str, Any] | None = None) -> CompiledPolicy:
    return compile_policy(Policy.model_validate({**LIVE, **(extra or {})}), str(Path("chat.yaml")))


def canary(percent: float, key: str = "subject") -> PolicySet:
    candidate = compiled({"description": "next", "rollout": {"percent": percent, "key": key}})
    return PolicySet.of({"chat": compiled()}, {"chat": candidate})


def who(subject: str, team: str | None = None, key_id: str | None = None) -> Principal:
    return Principal(subject, frozenset({"analyst"}), team, key_id)


def arms(policies: PolicySet, subjects: list[str]) -> dict[str, str]:
    live = policies.policies["chat"]
    return {s: assign(policies, live, who(s), {}).arm for s in subjects}


_RNG = random.Random(7)
SUBJECTS = [f"user-{_RNG.getrandbits(64):016x}" for _ in range(10_000)]


def test_ten_percent_of_ten_thousand_subjects_within_one_point() -> None:
    got = arms(canary(10), SUBJECTS)
    share = sum(arm == "candidate" for arm in got.values()) / len(SUBJECTS)
    assert 0.09 <= share <= 0.11


def test_raising_the_share_keeps_everyone_already_in() -> None:
    at10 = arms(canary(10), SUBJECTS)
    at20 = arms(canary(20), SUBJECTS)
    earlier = {s for s, arm in at10.items() if arm == "candidate"}
    later = {s for s, arm in at20.items() if arm == "candidate"}
    assert earlier < later
    assert 0.19 <= len(later) / len(SUBJECTS) <= 0.21


def test_the_bucket_is_the_same_number_everywhere() -> None:
    # A plain hash of the workflow and the value: no seed, no instance state.
    assert bucket("chat", "alice") == bucket("chat", "alice")
    assert 0 <= bucket("chat", "alice") < BUCKETS
    assert bucket("chat", "alice") != bucket("other", "alice") or bucket("chat", "bob") != bucket(
        "other", "bob"
    )


def test_enforced_candidate_is_the_candidate_and_live_share_judges_it_in_shadow() -> None:
    policies = canary(50)
    live = policies.policies["chat"]
    seen = {
        assign(policies, live, who(s), {}).arm: assign(policies, live, who(s), {})
        for s in SUBJECTS[:200]
    }
    assert seen["candidate"].policy.version == policies.candidates["chat"].version
    assert seen["candidate"].shadow is None
    assert seen["live"].policy is live
    assert seen["live"].shadow is policies.candidates["chat"]


def test_percent_zero_is_the_shadow_judgement_only() -> None:
    policies = canary(0)
    assert "chat" not in policies.enforced
    assert set(arms(policies, SUBJECTS[:2000]).values()) == {"live"}


@pytest.mark.parametrize(
    ("key", "caller", "headers"),
    [
        ("header:x-session-id", who("alice"), {}),  # the header absent
        ("team", who("alice"), {}),  # a caller without a team
        ("key", who("alice"), {}),  # a token: no gateway key id
    ],
)
def test_no_key_value_stays_on_live(key: str, caller: Principal, headers: dict[str, str]) -> None:
    policies = canary(100, key)
    assert assign(policies, policies.policies["chat"], caller, headers).arm == "live"


def test_header_key_keeps_a_conversation_on_one_version() -> None:
    policies = canary(50, "header:x-session-id")
    live = policies.policies["chat"]
    for session in (f"conv-{i}" for i in range(100)):
        arms_seen = {
            assign(policies, live, who(f"u{n}"), {"x-session-id": session}).arm for n in range(5)
        }
        assert len(arms_seen) == 1  # every caller of one conversation: one version


def test_an_aborted_canary_sends_everyone_to_live() -> None:
    policies = canary(100)
    version = policies.candidates["chat"].version
    flags = Flags({}, frozenset({("chat", version)}))
    live = policies.policies["chat"]
    assert {assign(policies, live, who(s), {}, flags).arm for s in SUBJECTS[:500]} == {"live"}
    # an abort of another version does not touch this one
    other = Flags({}, frozenset({("chat", "sha256:0000")}))
    assert {assign(policies, live, who(s), {}, other).arm for s in SUBJECTS[:50]} == {"candidate"}


def test_paused_by_flag_or_by_file() -> None:
    policies = canary(10)
    live = policies.policies["chat"]
    assert assign(
        policies, live, who("a"), {}, Flags({"chat": "incident"}, frozenset())
    ).paused == ("incident")
    paused = PolicySet.of({"chat": compiled({"mode": "paused"})}, {})
    assert assign(paused, paused.policies["chat"], who("a"), {}).paused is not None
    assert assign(policies, live, who("a"), {}).paused is None


def test_replay_marks_changed_records_by_the_same_assignment() -> None:
    # The candidate refuses every caller (another role): every record changes.
    stricter = {"access": {"roles": ["nobody"], "models": ["gpt-test"]}}
    live = compiled()
    records = []
    for subject in SUBJECTS[:400]:
        ctx = RequestContext("chat", "chat")
        ctx.workflow_known = True
        ctx.principal, ctx.policy = who(subject), live
        records.append(build_record(ctx, 200))
    for key, expected in (("subject", None), ("header:x-session-id", {None})):
        candidate = compiled({**stricter, "rollout": {"percent": 10, "key": key}})
        (report,) = replay(records, {"chat": candidate}, {"chat": live}).values()
        assert len(report.changed) == 400
        marks = {r.request_id: r.canary for r in report.changed}
        if expected is not None:  # headers are not recorded: unknown, never guessed
            assert set(marks.values()) == expected
            continue
        policies = PolicySet.of({"chat": live}, {"chat": candidate})
        for record in records:
            arm = assign(policies, live, who(str(record.subject)), {}).arm
            assert marks[record.request_id] is (arm == "candidate")
        assert 20 <= report.as_json()["in_canary"] <= 60
