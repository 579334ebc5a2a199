"""Quality checks on completed answers, driven through both SDKs, streamed and not: a failed
check moves to the next model or the fallback message, and the record says why."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from tests.audit.conftest import AuditedGateway
from tests.fakes.upstream import REFUSAL, CutStream, FakeUpstream, Reply, Status
from tests.fallback.client import PRIMARY, Sdk, ask
from tests.fallback.conftest import BACKUP_MESSAGE
from tests.support.placeholders import keyed

SDKS: list[Sdk] = ["openai", "anthropic"]
GOOD_ROUTE = '{"queue": "smb", "priority": 2}'


@pytest.mark.parametrize("stream", [False, True])
def test_low_confidence_answer_is_replaced_by_the_backup_model(
    gw: AuditedGateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.script("gpt-up", Reply("maybe blue", logprob=-2.5))
    upstream.script("gpt-backup-up", Reply("surely red", logprob=-0.1))
    text, headers, answer = ask(gw, "openai", "checked", stream)
    assert text == "surely red"
    assert headers["x-gateway-fallback"] == "quality.low_confidence"
    # The gateway asked for logprobs; the client did not, so it gets none.
    assert [r.body.get("logprobs") for r in upstream.received] == [True, True]
    if stream:
        assert all(c.choices[0].logprobs is None for c in answer if c.choices)
    else:
        assert answer.choices[0].logprobs is None
    r = gw.one(headers["x-request-id"])
    assert (r.fallback, r.fallback_reason, r.model_used) == (
        "model",
        "quality.low_confidence",
        "gpt-backup",
    )
    assert r.reasons == ["quality.low_confidence"] and r.decision == "transform"


def test_logprobs_the_client_asked_for_are_kept(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("confident", logprob=-0.2))
    text, headers, answer = ask(gw, "openai", "checked", False, logprobs=True)
    assert text == "confident" and "x-gateway-fallback" not in headers
    assert [t.logprob for t in answer.choices[0].logprobs.content] == [-0.2]


def test_confident_answer_passes_untouched(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("the answer is 42", logprob=-0.9))
    text, headers, _ = ask(gw, "openai", "checked", False)
    assert text == "the answer is 42"
    assert headers["x-gateway-decision"] == "allow" and upstream.requests_for("gpt-backup-up") == []


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("stream", [False, True])
def test_refusal_moves_to_the_next_model(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk, stream: bool
) -> None:
    upstream.script(PRIMARY[sdk], Reply(REFUSAL + " Is there anything else I can help with?"))
    # The chain's next model is gpt-backup for both: an Anthropic client gets it translated.
    upstream.script("gpt-backup-up", Reply("Here is the summary."))
    text, headers, _ = ask(gw, sdk, "checked", stream)
    assert text == "Here is the summary."
    assert headers["x-gateway-fallback"] == "quality.refusal"
    assert gw.one(headers["x-request-id"]).fallback_reason == "quality.refusal"


def test_partial_refusal_under_the_share_passes(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    answer = "I can't help with pricing. The report covers sales in three regions, with totals per quarter and notes."
    upstream.script("claude-up", Reply(answer))
    assert ask(gw, "anthropic", "checked", False)[0] == answer


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "quality.schema_invalid"),
        ('{"queue": "smb", "priority": 9}', "quality.schema_invalid"),
        ('{"queue": "smb"}', "quality.schema_invalid"),
        ('{"queue": "smb", "priority": 2, "note": "extra"}', "quality.schema_invalid"),
    ],
)
def test_answer_breaking_the_contract_gets_the_message(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk, stream: bool, text: str, reason: str
) -> None:
    upstream.script(PRIMARY[sdk], Reply(text))
    got, headers, _ = ask(gw, sdk, "routed", stream)
    assert got == BACKUP_MESSAGE
    assert headers["x-gateway-fallback"] == reason
    assert headers["x-gateway-decision"] == f"transform; reason={reason}"
    r = gw.one(headers["x-request-id"])
    assert (r.fallback, r.fallback_reason, r.status, r.review) == ("message", reason, 200, False)
    assert (r.streamed, r.stream_end) == ((True, "completed") if stream else (False, None))


@pytest.mark.parametrize("sdk", SDKS)
def test_forbidden_pattern_is_a_pattern_failure(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk
) -> None:
    upstream.script(PRIMARY[sdk], Reply('{"queue": "enterprise", "priority": 2}'))
    text, headers, _ = ask(gw, sdk, "routed", False)
    assert text == BACKUP_MESSAGE
    assert headers["x-gateway-fallback"] == "quality.pattern_failed"


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("stream", [False, True])
def test_valid_answer_passes_the_contract(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk, stream: bool
) -> None:
    upstream.script(PRIMARY[sdk], Reply(GOOD_ROUTE))
    text, headers, _ = ask(gw, sdk, "routed", stream)
    assert orjson.loads(text) == {"queue": "smb", "priority": 2}
    assert "x-gateway-fallback" not in headers and headers["x-gateway-decision"] == "allow"


def test_without_a_fallback_a_failed_check_is_the_documented_error(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Reply("not json at all"))
    with pytest.raises(openai.InternalServerError) as caught:
        gw.openai("strict_schema").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert (caught.value.status_code, caught.value.code) == (502, "quality.schema_invalid")
    upstream.script("claude-up", Reply("not json at all"))
    with (
        pytest.raises(anthropic.InternalServerError) as err,
        gw.anthropic("strict_schema").messages.stream(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        list(stream)
    assert (
        isinstance(err.value.body, dict)
        and err.value.body["error"]["code"] == "quality.schema_invalid"
    )
    r = gw.one(err.value.response.headers["x-request-id"])
    assert (r.decision, r.reasons, r.status) == ("error", ["quality.schema_invalid"], 502)


@pytest.mark.parametrize("sdk", SDKS)
def test_stream_cut_while_held_falls_back_before_any_byte(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk
) -> None:
    upstream.script(PRIMARY[sdk], CutStream(after=2))
    text, headers, _ = ask(gw, sdk, "routed", True)
    assert text == BACKUP_MESSAGE and "part0" not in text
    assert headers["x-gateway-fallback"] == "upstream.broken_stream"


@pytest.mark.parametrize("sdk", SDKS)
def test_pass_streams_are_relayed_unchecked(
    gw: AuditedGateway, upstream: FakeUpstream, sdk: Sdk
) -> None:
    upstream.script(PRIMARY[sdk], Reply("does not match"))
    text, headers, _ = ask(gw, sdk, "passing", True)
    assert text == "does not match"
    assert "logprobs" not in upstream.received[-1].body  # nothing to check: nothing asked
    assert gw.one(headers["x-request-id"], wait=2).reasons == ["quality.unchecked"]


def test_a_masked_unchecked_stream_says_masked(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("noted"))
    text, headers, _ = ask(gw, "openai", "passing_masked", True, "mail ann@example.com")
    assert text == "noted" and headers["x-gateway-decision"] == "masked"
    masked = keyed("passing_masked", "EMAIL_ADDRESS", "ann@example.com")
    assert upstream.received[-1].body["messages"][0]["content"] == f"mail {masked}"
    r = gw.one(headers["x-request-id"], wait=2)
    assert r.reasons == ["boundary.masked", "quality.unchecked"]


def test_pass_policy_still_checks_whole_answers(gw: AuditedGateway, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply("does not match"))
    with pytest.raises(openai.InternalServerError) as caught:
        gw.openai("passing").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "quality.pattern_failed"


def test_anthropic_answers_have_no_logprobs_and_are_recorded_unchecked(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", Reply("fine"))
    text, headers, _ = ask(gw, "anthropic", "checked", False)
    assert text == "fine" and "logprobs" not in upstream.received[-1].body
    assert gw.one(headers["x-request-id"]).reasons == ["quality.unchecked"]


def test_upstream_down_everywhere_gets_the_message(
    gw: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("claude-up", *[Status(500)] * 2)
    upstream.script("gpt-backup-up", *[Status(502)] * 2)
    upstream.script("claude-backup-up", *[Status(503)] * 2)
    text, headers, _ = ask(gw, "anthropic", "checked", True)
    assert text == BACKUP_MESSAGE and headers["x-gateway-fallback"] == "upstream.error"
    r = gw.one(headers["x-request-id"], wait=2)
    assert r.reasons == ["upstream.error"] * 3 and (r.fallback, r.attempts) == ("message", 6)
