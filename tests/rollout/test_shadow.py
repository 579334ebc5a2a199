"""Shadow mode and candidate policies on live traffic, read back from the audit trail on
SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import openai
import pytest

from gateway.audit import AuditRecord
from gateway.policy.reload import start_registry
from tests.audit.conftest import PG_URL, AuditedGateway, drop_schema, start_gateway
from tests.fakes.upstream import FakeUpstream, Reply
from tests.support.placeholders import keyed
from tests.support.server import write_yaml

EMAIL = "jane.doe@example.com"
MASKED = keyed("chat_app", "EMAIL_ADDRESS", EMAIL)  # as the live policy masks it
CARD = "4111 1111 1111 1111"
PHONE = "+44 20 7946 0958"

LIVE: dict[str, Any] = {
    "workflow": "chat_app",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test", "gpt-backup", "claude-test"]},
    "data": {"entities": {"EMAIL_ADDRESS": "mask"}},
}
# Stricter: e-mail blocked, phone numbers masked, one model only.
CANDIDATE: dict[str, Any] = {
    **LIVE,
    "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
    "data": {"entities": {"EMAIL_ADDRESS": "block", "PHONE_NUMBER": "mask"}},
}
# The same detection as its live policy, other actions and models: judged from the live
# findings, without a second detection.
TWIN: dict[str, Any] = {
    "workflow": "twin",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
    "data": {"entities": {"EMAIL_ADDRESS": "mask", "PHONE_NUMBER": "mask"}},
}
TWIN_CANDIDATE: dict[str, Any] = {
    **TWIN,
    "access": {"roles": ["analyst"], "models": ["gpt-test", "gpt-backup"]},
    "data": {"entities": {"EMAIL_ADDRESS": "block", "PHONE_NUMBER": "tokenize"}},
}
SHADOWED: dict[str, Any] = {
    "workflow": "shadowed",
    "owner": "tests@example.com",
    "mode": "shadow",
    "access": {"roles": ["analyst"], "models": ["gpt-test"], "max_output_tokens": 100},
    "data": {"entities": {"EMAIL_ADDRESS": "mask", "CREDIT_CARD": "block"}},
}


@dataclass
class Trail:
    """The gateway and a way to read its records from whichever store it writes to."""

    gw: AuditedGateway
    schema: str | None  # PostgreSQL schema, None: the SQLite file

    def one(self, request_id: str) -> AuditRecord:
        if self.schema is None:
            return self.gw.one(request_id, wait=2)

        async def fetch() -> list[Any]:
            db = await asyncpg.connect(PG_URL)
            try:
                return list(
                    await db.fetch(
                        f"SELECT body FROM {self.schema}.records WHERE request_id = $1",
                        request_id,
                    )
                )
            finally:
                await db.close()

        rows = asyncio.run(fetch())
        assert len(rows) == 1
        return AuditRecord.from_json(bytes(rows[0][0]))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def trail(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    root = tmp_path_factory.mktemp("shadow")
    write_yaml(root / "policies" / "chat_app.candidate.yaml", CANDIDATE)
    write_yaml(root / "policies" / "twin.candidate.yaml", TWIN_CANDIDATE)
    schema = None
    audit: dict[str, object] = {"durability": "sync"}
    stores = None
    if request.param == "postgres":
        schema = f"policylive_{uuid.uuid4().hex[:10]}"
        audit["pg_schema"] = schema
        stores = {"audit_url": PG_URL}
    gw, server = start_gateway(
        root,
        upstream,
        audit,
        stores,
        policies={"chat_app": LIVE, "shadowed": SHADOWED, "twin": TWIN},
    )
    try:
        yield Trail(gw, schema)
    finally:
        server.stop()
        if schema is not None:
            asyncio.run(drop_schema(schema))


def chat(
    trail: Trail, text: str, workflow: str = "chat_app", model: str = "gpt-test", **kw: Any
) -> tuple[AuditRecord, dict[str, str], str]:
    raw = trail.gw.openai(workflow).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw
    )
    answer = raw.parse().choices[0].message.content or ""
    return trail.one(raw.headers["x-request-id"]), dict(raw.headers), answer


# -- shadow mode -------------------------------------------------------------------------


def test_shadow_would_block_passes_unchanged(trail: Trail, upstream: FakeUpstream) -> None:
    text = f"card {CARD} and mail {EMAIL}"
    record, headers, answer = chat(trail, text, "shadowed")
    assert upstream.received[-1].body["messages"][0]["content"] == text  # sent as written
    assert answer == f"echo: {text}"  # and answered unchanged (the fake echoes it)
    assert headers["x-gateway-decision"] == "allow; reason=boundary.would_block"
    assert (record.mode, record.shadow, record.decision, record.status) == (
        "shadow", True, "allow", 200,
    )  # fmt: skip
    assert "boundary.would_block" in record.reasons
    assert record.entities["request"] == {"block": {"CREDIT_CARD": 1}, "mask": {"EMAIL_ADDRESS": 1}}
    assert record.content is None and record.candidate is None


def test_shadow_would_mask_passes_unchanged(trail: Trail, upstream: FakeUpstream) -> None:
    record, headers, answer = chat(trail, f"mail {EMAIL}", "shadowed")
    assert upstream.received[-1].body["messages"][0]["content"] == f"mail {EMAIL}"
    assert answer == f"echo: mail {EMAIL}"
    assert headers["x-gateway-decision"] == "allow; reason=boundary.would_mask"
    assert record.reasons == ["boundary.would_mask", "boundary.would_mask"]  # request, answer
    assert record.entities["request"] == {"mask": {"EMAIL_ADDRESS": 1}}


def test_shadow_answer_with_blocked_entity_passes(trail: Trail, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply(f"your card is {CARD}"))
    record, _, answer = chat(trail, "what is my card?", "shadowed")
    assert answer == f"your card is {CARD}"
    assert record.reasons == ["boundary.would_block"] and record.decision == "allow"
    assert record.entities["answer"] == {"block": {"CREDIT_CARD": 1}}


def test_shadow_stream_passes_unchanged(trail: Trail, upstream: FakeUpstream) -> None:
    upstream.script("gpt-up", Reply(pieces=("card ", CARD[:7], CARD[7:], " end")))
    stream = trail.gw.openai("shadowed").chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    rid = stream.headers["x-request-id"]
    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text == f"card {CARD} end"
    record = trail.one(rid)
    assert record.stream_end == "completed" and record.reasons == ["boundary.would_block"]


def test_shadow_still_enforces_access(trail: Trail) -> None:
    """Who may call and with what is authorization, not a data rule: shadow mode trials data
    rules only (a candidate trials access changes)."""
    with pytest.raises(openai.PermissionDeniedError) as denied:
        trail.gw.openai("shadowed", trail.gw.ops_key).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert denied.value.body["code"] == "access.role_denied"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as over:
        chat(trail, "hi", "shadowed", max_tokens=500)
    assert over.value.body["code"] == "access.max_tokens_exceeded"  # type: ignore[index]


# -- candidates --------------------------------------------------------------------------


def versions(trail: Trail) -> tuple[str, str]:
    import httpx2

    ready = httpx2.get(f"{trail.gw.url}/readyz").json()
    return ready["policies"]["chat_app"], ready["policy_set"]["candidates"]["chat_app"]


def test_candidate_would_block_what_live_masks(trail: Trail, upstream: FakeUpstream) -> None:
    live, candidate = versions(trail)
    record, headers, _ = chat(trail, f"mail {EMAIL}")
    # Live traffic is the live policy's: masked, sent once, under the live version.
    assert upstream.received[-1].body["messages"][0]["content"] == f"mail {MASKED}"
    assert len(upstream.received) == 1
    assert headers["x-gateway-policy-version"] == live == record.policy_version
    assert headers["x-gateway-decision"] == "masked" and record.decision == "masked"
    assert record.candidate == {
        "version": candidate,
        "decision": "deny",
        "reasons": ["boundary.blocked_entity"],
        "entities": {"block": {"EMAIL_ADDRESS": 1}},
        "differs": True,
    }


def test_candidate_sees_an_entity_live_does_not_look_for(trail: Trail) -> None:
    record, _, _ = chat(trail, f"call me on {PHONE}")
    assert record.decision == "allow" and record.entities["request"] == {}
    assert record.candidate is not None
    assert record.candidate["decision"] == "masked"
    assert record.candidate["entities"] == {"mask": {"PHONE_NUMBER": 1}}


def test_candidate_agreeing_is_recorded_as_such(trail: Trail) -> None:
    _, candidate = versions(trail)
    record, _, _ = chat(trail, "nothing to see")
    assert record.candidate == {
        "version": candidate, "decision": "allow", "reasons": [], "differs": False,
    }  # fmt: skip


def test_candidate_access_rules_in_shadow(trail: Trail, upstream: FakeUpstream) -> None:
    record, _, _ = chat(trail, "hello", model="gpt-backup")  # live allows it, candidate not
    assert record.status == 200 and upstream.received[-1].body["model"] == "gpt-backup-up"
    assert record.candidate is not None
    assert (record.candidate["decision"], record.candidate["reasons"]) == (
        "deny", ["access.model_denied"],
    )  # fmt: skip


def test_candidate_when_live_refuses_the_caller(trail: Trail) -> None:
    with pytest.raises(openai.PermissionDeniedError) as denied:
        trail.gw.openai("chat_app", trail.gw.ops_key).chat.completions.with_raw_response.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    rid = denied.value.response.headers["x-request-id"]
    record = trail.one(rid)
    assert record.candidate is not None
    assert record.candidate["request_read"] is False
    assert record.candidate["reasons"] == ["access.role_denied"]
    assert record.candidate["differs"] is False


def test_record_without_candidate_field_still_reads() -> None:
    """Records written before the field existed (an existing trail) read as no candidate;
    the schema is unchanged: the field lives in the record's JSON body."""
    record = AuditRecord.from_json(
        b'{"request_id":"r","time":1.0,"endpoint":"chat","workflow":"w","policy_version":null,'
        b'"mode":null,"subject":null,"roles":[],"team":null,"key_id":null,"auth_method":null,'
        b'"model_requested":null,"model_used":null,"fallback_used":false,"decision":"allow",'
        b'"reasons":[],"status":200,"streamed":false,"stream_end":null,"upstream_status":null,'
        b'"attempts":0,"retries":0,"latency_ms":1.0,"upstream_ms":null,"tokens_in":null,'
        b'"tokens_out":null,"reserved_usd":null,"actual_usd":null,"upstream_store":null}'
    )
    assert record.candidate is None


def test_candidate_on_an_anthropic_stream(trail: Trail, upstream: FakeUpstream) -> None:
    live, candidate = versions(trail)
    with trail.gw.anthropic().messages.with_streaming_response.create(
        model="claude-test",
        max_tokens=50,
        stream=True,
        messages=[{"role": "user", "content": f"mail {EMAIL}"}],
    ) as response:
        rid = response.headers["x-request-id"]
        events = list(response.iter_lines())
    assert any("message_stop" in line for line in events)
    assert upstream.received[-1].body["messages"][0]["content"] == f"mail {MASKED}"
    record = trail.one(rid)
    assert (record.policy_version, record.stream_end) == (live, "completed")
    assert record.candidate is not None
    assert (record.candidate["version"], record.candidate["decision"]) == (candidate, "deny")


def test_candidate_with_the_live_detection_shares_its_detector(tmp_path: Path) -> None:
    for name, data in (("twin", TWIN), ("chat_app", LIVE)):
        write_yaml(tmp_path / f"{name}.yaml", data)
    write_yaml(tmp_path / "twin.candidate.yaml", TWIN_CANDIDATE)
    write_yaml(tmp_path / "chat_app.candidate.yaml", CANDIDATE)
    current = start_registry(tmp_path, ["gpt-test", "gpt-backup", "claude-test"], None).current
    twin, chat_app = current.candidates["twin"].data, current.candidates["chat_app"].data
    assert twin is not None and chat_app is not None and twin.shadow and chat_app.shadow
    assert twin.detector is current.policies["twin"].data.detector  # type: ignore[union-attr]
    assert chat_app.detector is not current.policies["chat_app"].data.detector  # type: ignore[union-attr]


def test_twin_candidate_judged_from_the_live_findings(trail: Trail) -> None:
    record, _, _ = chat(trail, f"mail {EMAIL} or call {PHONE}", "twin")
    assert record.decision == "masked"
    assert record.entities["request"] == {"mask": {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}}
    assert record.candidate is not None
    assert (record.candidate["decision"], record.candidate["reasons"]) == (
        "deny", ["boundary.blocked_entity"],
    )  # fmt: skip
    assert record.candidate["entities"] == {
        "block": {"EMAIL_ADDRESS": 1}, "tokenize": {"PHONE_NUMBER": 1},
    }  # fmt: skip
    clean, _, _ = chat(trail, "nothing here", "twin")
    assert clean.candidate is not None and clean.candidate["differs"] is False


def test_twin_candidate_when_live_refused_before_its_boundary(trail: Trail) -> None:
    """Live refuses the model before inspecting the text; the text is still as sent, so
    the candidate (which allows the model) inspects it when the record is made."""
    with pytest.raises(openai.PermissionDeniedError) as denied:
        trail.gw.openai("twin").chat.completions.create(
            model="gpt-backup", messages=[{"role": "user", "content": f"call {PHONE}"}]
        )
    record = trail.one(denied.value.response.headers["x-request-id"])
    assert record.reasons == ["access.model_denied"]
    assert record.candidate is not None
    assert (record.candidate["decision"], record.candidate["reasons"]) == (
        "masked", ["boundary.masked"],
    )  # fmt: skip
    assert record.candidate["entities"] == {"tokenize": {"PHONE_NUMBER": 1}}
