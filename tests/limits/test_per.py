"""Whose traffic each ``per`` counts, through the limits step on both backends."""

from __future__ import annotations

import orjson
import pytest

from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.limits.step import Limits
from gateway.limits.store import Store
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.surfaces import openai_chat
from tests.limits.test_periods import MODELS, Clock

BODY = orjson.dumps(
    {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
)


def policy(workflow: str, per: str, roles: list[str] | None = None) -> CompiledPolicy:
    source = Policy.model_validate(
        {
            "workflow": workflow,
            "owner": "o@example.com",
            "access": {"roles": roles or ["analyst", "ops"], "models": ["gpt-test"]},
            "limits": {"rate": [{"per": per, "requests_per_minute": 2}]},
        }
    )
    return compile_policy(source, f"{workflow}.yaml")


async def admitted(limits: Limits, compiled: CompiledPolicy, who: Principal) -> bool:
    ctx = RequestContext("chat", compiled.name, principal=who)
    try:
        await limits.admit(ctx, openai_chat.parse(BODY), compiled)
    except GatewayError:
        return False
    await limits.settle(ctx)
    return True


def caller(subject: str, *roles: str, team: str | None = None, key: str | None = None) -> Principal:
    return Principal(subject, frozenset(roles), team=team, key_id=key)


@pytest.fixture
def limits(store: Store, prefix: str) -> Limits:
    return Limits(store, MODELS, prefix, Clock("2026-03-10T12:00:00"))


async def test_user_and_key(limits: Limits) -> None:
    by_user, by_key = policy("wf", "user"), policy("wk", "key")
    alice_k1, alice_k2 = caller("alice", "analyst", key="k1"), caller("alice", "analyst", key="k2")
    assert [await admitted(limits, by_user, c) for c in (alice_k1, alice_k2, alice_k1)] == [
        True,
        True,
        False,  # one user, whatever key
    ]
    assert [await admitted(limits, by_key, c) for c in (alice_k1, alice_k2, alice_k1)] == [
        True,
        True,
        True,  # two keys, two counters
    ]


async def test_team_without_a_team_shares_one_counter(limits: Limits) -> None:
    by_team = policy("wf", "team")
    red1, red2 = caller("a", "analyst", team="red"), caller("b", "analyst", team="red")
    blue, lone1, lone2 = (
        caller("c", "analyst", team="blue"),
        caller("d", "analyst"),
        caller("e", "ops"),
    )
    results = [
        await admitted(limits, by_team, c) for c in (red1, red2, red1, blue, lone1, lone2, lone1)
    ]
    assert results == [True, True, False, True, True, True, False]


async def test_role_counts_each_admitted_role(limits: Limits) -> None:
    by_role = policy("wf", "role")
    both, analyst = caller("a", "analyst", "ops", "other"), caller("b", "analyst")
    assert await admitted(limits, by_role, both)  # analyst 1, ops 1 ("other" not admitted)
    assert await admitted(limits, by_role, analyst)  # analyst 2
    assert not await admitted(limits, by_role, both)  # analyst is full, so both refuse
    assert await admitted(limits, by_role, caller("c", "ops"))  # ops 2


async def test_workflow_is_per_workflow_and_global_spans_them(limits: Limits) -> None:
    one, two = policy("one", "workflow"), policy("two", "workflow")
    users = [caller(s, "analyst") for s in ("a", "b", "c")]
    assert [await admitted(limits, one, u) for u in users] == [True, True, False]
    assert await admitted(limits, two, users[0])
    g1, g2 = policy("g1", "global"), policy("g2", "global")
    assert [await admitted(limits, g, u) for g, u in zip((g1, g2, g1), users, strict=True)] == [
        True,
        True,
        False,  # one gateway-wide counter across both workflows
    ]
