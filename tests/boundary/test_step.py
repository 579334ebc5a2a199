"""The boundary step in process: what it leaves on the request context for the audit trail."""

from __future__ import annotations

import orjson
import pytest
from ruamel.yaml import YAML

from gateway.auth.principal import Principal
from gateway.boundary.actions import TokenMinter
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.surfaces.openai_chat import parse

POLICY = """\
workflow: w
owner: o@example.com
mode: {mode}
access: {{roles: [r], models: [m]}}
data:
  entities: {{EMAIL_ADDRESS: tokenize, PHONE_NUMBER: mask, CREDIT_CARD: block}}
"""
TEXT = "mail ann@example.com or bob@example.org, ring +44 20 7946 0958"


def _policy(mode: str) -> CompiledPolicy:
    doc = YAML(typ="safe").load(POLICY.format(mode=mode))
    return compile_policy(Policy.model_validate(doc), "w.yaml")


async def _inspect(mode: str, text: str) -> RequestContext:
    ctx = RequestContext("chat", "w")
    ctx.principal = Principal("alice", frozenset({"r"}))
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": text}]})
    await Boundary(MemoryVault(), TokenMinter(b"k" * 32)).inspect(ctx, parse(body), _policy(mode))
    return ctx


async def test_record_holds_types_counts_and_rules_never_values() -> None:
    ctx = await _inspect("enforce", TEXT)
    assert ctx.boundary is not None
    assert ctx.boundary.request == {"mask": {"PHONE_NUMBER": 1}, "tokenize": {"EMAIL_ADDRESS": 2}}
    assert ctx.boundary.rules == {"email", "phone"}
    assert not ctx.boundary.shadow and not ctx.boundary.detector_error
    assert ctx.decision == "masked"
    assert "ann@" not in repr(ctx.boundary) and "7946" not in repr(ctx.boundary)


async def test_shadow_records_what_it_would_do() -> None:
    ctx = await _inspect("shadow", TEXT + ", card 4111 1111 1111 1111")
    assert ctx.boundary is not None and ctx.boundary.shadow
    assert ctx.boundary.request["block"] == {"CREDIT_CARD": 1}
    assert ctx.decision == "allow; reason=boundary.would_block"


async def test_block_is_refused_without_the_value() -> None:
    with pytest.raises(GatewayError) as caught:
        await _inspect("enforce", "card 4111 1111 1111 1111")
    assert caught.value.reason.code == "boundary.blocked_entity"
    assert "4111" not in caught.value.message


async def test_a_surface_that_skipped_the_total_walk_is_inspected_whole() -> None:
    """Fail closed: a request whose surface never called ``every_leaf`` is walked whole by
    the boundary step, with nothing listed as non-text."""
    from gateway.normalized import NormalizedRequest

    body = {"model": "m", "input": {"note": "card 4111 1111 1111 1111"}}
    request = NormalizedRequest("future_api", body, "m", False, None)
    ctx = RequestContext("chat", "w")
    with pytest.raises(GatewayError) as caught:
        await Boundary(MemoryVault(), TokenMinter(b"k" * 32)).inspect(
            ctx, request, _policy("enforce")
        )
    assert caught.value.reason.code == "boundary.blocked_entity"
    assert request.complete
