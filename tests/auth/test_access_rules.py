"""Per-workflow access through both official SDKs, with JWTs and gateway keys: roles, subjects,
teams, endpoints, models, tools, streaming and the output-token ceiling."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.auth.conftest import AuthGateway
from tests.fakes.upstream import FakeUpstream
from tests.support.tokens import Idp

MESSAGES: Any = [{"role": "user", "content": "hi"}]
TOOL_OPENAI: Any = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
]
TOOL_ANTHROPIC: Any = [{"name": "lookup", "input_schema": {"type": "object"}}]


def test_role_admits_through_both_sdks(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    token = idp.token("ES256", kid="ec-1")
    reply = jwt_gateway.openai("open", token).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    assert reply.choices[0].message.content == "echo: hi"
    message = jwt_gateway.anthropic("open", token).messages.create(
        model="claude-test", max_tokens=20, messages=MESSAGES
    )
    assert message.content[0].type == "text"
    assert len(upstream.received) == 2
    assert token not in str([r.headers for r in upstream.received])  # never forwarded


@pytest.mark.parametrize("roles", [["intern"], [], "viewer"])
def test_role_denied_through_both_sdks(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream, roles: Any
) -> None:
    token = idp.token(realm_access={"roles": roles})
    with pytest.raises(openai.PermissionDeniedError) as oai:
        jwt_gateway.openai("open", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )
    assert oai.value.code == "access.role_denied"
    with pytest.raises(anthropic.PermissionDeniedError) as ant:
        jwt_gateway.anthropic("open", token).messages.create(
            model="claude-test", max_tokens=5, messages=MESSAGES
        )
    assert (
        isinstance(ant.value.body, dict) and ant.value.body["error"]["code"] == "access.role_denied"
    )
    assert upstream.received == []


def test_a_single_string_role_claim_admits(jwt_gateway: AuthGateway, idp: Idp) -> None:
    token = idp.token(realm_access={"roles": "sales"})
    assert jwt_gateway.openai("open", token).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )


def test_model_allowed_and_denied(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    token = idp.token("EdDSA", kid="ed-1")
    assert jwt_gateway.anthropic("open", token).messages.create(
        model="claude-test", max_tokens=5, messages=MESSAGES
    )
    with pytest.raises(openai.PermissionDeniedError) as oai:
        jwt_gateway.openai("open", token).chat.completions.create(
            model="gpt-backup", messages=MESSAGES
        )
    assert oai.value.code == "access.model_denied"
    with pytest.raises(anthropic.PermissionDeniedError) as ant:
        jwt_gateway.anthropic("open", token).messages.create(
            model="claude-backup", max_tokens=5, messages=MESSAGES
        )
    assert (
        isinstance(ant.value.body, dict)
        and ant.value.body["error"]["code"] == "access.model_denied"
    )
    assert len(upstream.received) == 1


@pytest.mark.parametrize(
    ("field", "asked", "sent"),
    [("max_tokens", 500, 100), ("max_completion_tokens", 500, 100), ("max_tokens", 40, 40)],
)
def test_openai_max_tokens_clamped_in_the_field_the_client_used(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream, field: str, asked: int, sent: int
) -> None:
    raw = jwt_gateway.openai("clamped", idp.token()).chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, **{field: asked}
    )
    (received,) = upstream.received
    assert received.body[field] == sent
    assert {"max_tokens", "max_completion_tokens"} & set(received.body) == {field}
    clamped = asked > sent
    decision = "transform; reason=access.max_tokens_clamped" if clamped else "allow"
    assert raw.headers["x-gateway-decision"] == decision


def test_openai_without_a_limit_gets_the_ceiling(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    jwt_gateway.openai("clamped", idp.token()).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    (received,) = upstream.received
    assert received.body["max_completion_tokens"] == 100 and "max_tokens" not in received.body


def test_anthropic_max_tokens_clamped(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    raw = jwt_gateway.anthropic("clamped", idp.token()).messages.with_raw_response.create(
        model="claude-test", max_tokens=4096, messages=MESSAGES
    )
    assert upstream.received[0].body["max_tokens"] == 100
    assert raw.headers["x-gateway-decision"] == "transform; reason=access.max_tokens_clamped"


def test_max_tokens_over_the_ceiling_rejected(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    token = idp.token()
    with pytest.raises(openai.BadRequestError) as oai:
        jwt_gateway.openai("strict", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES, max_completion_tokens=101
        )
    assert oai.value.code == "access.max_tokens_exceeded"
    with pytest.raises(openai.BadRequestError):  # the older field is held to the same ceiling
        jwt_gateway.openai("strict", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES, max_completion_tokens=50, max_tokens=101
        )
    assert upstream.received == []
    jwt_gateway.openai("strict", token).chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert upstream.received[0].body["max_completion_tokens"] == 100


def test_tools_refused_through_both_sdks(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    token = idp.token()
    with pytest.raises(openai.PermissionDeniedError) as oai:
        jwt_gateway.openai("strict", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES, tools=TOOL_OPENAI
        )
    assert oai.value.code == "access.tool_denied"
    with pytest.raises(openai.PermissionDeniedError):  # the older name for tools
        jwt_gateway.openai("strict", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES, functions=[TOOL_OPENAI[0]["function"]]
        )
    with pytest.raises(anthropic.PermissionDeniedError) as ant:
        jwt_gateway.anthropic("strict", token).messages.create(
            model="claude-test", max_tokens=5, messages=MESSAGES, tools=TOOL_ANTHROPIC
        )
    assert isinstance(ant.value.body, dict)
    assert ant.value.body["error"]["code"] == "access.tool_denied"
    assert upstream.received == []
    # Where tools are allowed they pass untouched.
    jwt_gateway.anthropic("open", token).messages.create(
        model="claude-test", max_tokens=5, messages=MESSAGES, tools=TOOL_ANTHROPIC
    )
    assert upstream.received[0].body["tools"] == TOOL_ANTHROPIC


def test_streaming_refused_through_both_sdks(
    jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream
) -> None:
    token = idp.token()
    with pytest.raises(openai.PermissionDeniedError) as oai:
        jwt_gateway.openai("strict", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True
        )
    assert oai.value.code == "access.streaming_denied"
    with pytest.raises(anthropic.PermissionDeniedError) as ant:
        jwt_gateway.anthropic("strict", token).messages.create(
            model="claude-test", max_tokens=5, messages=MESSAGES, stream=True
        )
    assert isinstance(ant.value.body, dict)
    assert ant.value.body["error"]["code"] == "access.streaming_denied"
    assert upstream.received == []


def test_endpoints(jwt_gateway: AuthGateway, idp: Idp, upstream: FakeUpstream) -> None:
    token = idp.token()
    with pytest.raises(anthropic.PermissionDeniedError) as ant:
        jwt_gateway.anthropic("no_messages", token).messages.create(
            model="claude-test", max_tokens=5, messages=MESSAGES
        )
    assert isinstance(ant.value.body, dict)
    assert ant.value.body["error"]["code"] == "access.endpoint_denied"
    with pytest.raises(openai.PermissionDeniedError) as oai:
        jwt_gateway.openai("chat_only", token).models.list()
    assert oai.value.code == "access.endpoint_denied"
    assert upstream.received == []
    assert jwt_gateway.openai("chat_only", token).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )


def test_teams_and_subjects(jwt_gateway: AuthGateway, idp: Idp) -> None:
    emea, apac = idp.token(), idp.token(org={"team": "apac"})
    assert jwt_gateway.openai("emea_only", emea).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    with pytest.raises(openai.PermissionDeniedError) as denied:
        jwt_gateway.openai("emea_only", apac).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )
    assert denied.value.code == "access.team_denied"
    no_team = idp.token(org=None)
    with pytest.raises(openai.PermissionDeniedError):
        jwt_gateway.openai("emea_only", no_team).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )
    # The gateway key of team emea is admitted the same way.
    assert jwt_gateway.openai("emea_only", jwt_gateway.sales_key).models.list()
    assert jwt_gateway.openai("ann_only", idp.token(sub="ann")).models.list()
    with pytest.raises(anthropic.PermissionDeniedError) as ant:
        jwt_gateway.anthropic("ann_only", idp.token(sub="bob")).messages.create(
            model="claude-test", max_tokens=5, messages=MESSAGES
        )
    assert (
        isinstance(ant.value.body, dict)
        and ant.value.body["error"]["code"] == "access.subject_denied"
    )


def test_models_list_only_what_the_caller_may_use(jwt_gateway: AuthGateway, idp: Idp) -> None:
    token = idp.token()
    # Models of either API, in the policy's order: the other API's are reached by translation.
    both = ["gpt-test", "claude-test"]
    assert [m.id for m in jwt_gateway.openai("open", token).models.list()] == both
    assert [m.id for m in jwt_gateway.anthropic("open", token).models.list().data] == both
    # no_messages allows no messages endpoint: the Anthropic SDK could call nothing there.
    assert [m.id for m in jwt_gateway.anthropic("no_messages", token).models.list().data] == []
    with pytest.raises(openai.PermissionDeniedError) as denied:
        jwt_gateway.openai("open", idp.token(realm_access={"roles": ["intern"]})).models.list()
    assert denied.value.code == "access.role_denied"


def test_a_jwt_is_accepted_in_x_api_key_too(jwt_gateway: AuthGateway, idp: Idp) -> None:
    """Where older anthropic SDKs and curl users put the key."""
    response = httpx2.post(
        f"{jwt_gateway.url}/w/open/v1/messages",
        json={"model": "claude-test", "max_tokens": 5, "messages": MESSAGES},
        headers={"x-api-key": idp.token("EdDSA", kid="ed-1"), "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"
