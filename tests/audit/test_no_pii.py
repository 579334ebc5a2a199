"""A corpus of prompts full of PII and secrets through masking, tokenizing and blocking
policies, both SDKs, streamed and not: no value that the boundary kept in is anywhere in the
audit database, the spool or the logs; ``retention.content: masked`` keeps exactly the
masked text that left."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

from tests.audit.conftest import AuditedGateway, start_gateway
from tests.boundary.corpus import NER_MODEL, load_corpus
from tests.fakes.upstream import FakeUpstream

ENTITIES = {
    "PHONE_NUMBER": "mask", "SECRET": "redact", "EMAIL_ADDRESS": "tokenize", "IBAN_CODE": "mask",
    "PERSON": "mask", "CREDIT_CARD": "mask", "IP_ADDRESS": "mask", "LOCATION": "mask",
    "URL": "mask", "US_SSN": "redact",
}  # fmt: skip


def _policy(name: str, action: str | None, **extra: object) -> dict[str, object]:
    entities = {e: action or a for e, a in ENTITIES.items()}
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]},
        "upstream": {"timeout_s": 5, "retries": 0},
        "data": {"entities": entities},
        "retention": {"content": "masked"},
        **extra,
    }


PII_POLICIES = {
    "pii_masked": _policy("pii_masked", None),
    "pii_blocked": _policy("pii_blocked", "block"),
    "pii_shadow": _policy("pii_shadow", None, mode="shadow"),
}


@pytest.fixture(scope="module")
def pii_gateways(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AuditedGateway, AuditedGateway]]:
    """One gateway on SQLite, one whose PostgreSQL is unreachable (every record spooled)."""
    extra = {"nlp": {"engine": "spacy", "model": NER_MODEL}}
    sqlite, s1 = start_gateway(
        tmp_path_factory.mktemp("pii-sqlite"), upstream, policies=PII_POLICIES, extra=extra
    )
    spooled, s2 = start_gateway(
        tmp_path_factory.mktemp("pii-spool"), upstream, policies=PII_POLICIES, extra=extra,
        stores={"audit_url": "postgresql://postgres@127.0.0.1:1/nothing"},
    )  # fmt: skip
    try:
        yield sqlite, spooled
    finally:
        s1.stop()
        s2.stop()


def _send(gw: AuditedGateway, workflow: str, text: str, n: int) -> str:
    """One request, alternating SDK and streaming; its request id."""
    messages = [{"role": "user", "content": text}]
    try:
        if n % 4 == 0:
            raw = gw.openai(workflow).chat.completions.with_raw_response.create(
                model="gpt-test", messages=messages
            )  # type: ignore[arg-type]
            return raw.headers["x-request-id"]
        if n % 4 == 1:
            raw = gw.anthropic(workflow).messages.with_raw_response.create(
                model="claude-test", max_tokens=500, messages=messages
            )  # type: ignore[arg-type]
            return raw.headers["x-request-id"]
        if n % 4 == 2:
            with gw.openai(workflow).chat.completions.with_streaming_response.create(
                model="gpt-test", messages=messages, stream=True
            ) as s:  # type: ignore[arg-type]
                list(s.parse())
                return s.headers["x-request-id"]
        with gw.anthropic(workflow).messages.with_streaming_response.create(
            model="claude-test", max_tokens=500, messages=messages, stream=True
        ) as s:  # type: ignore[arg-type]
            list(s.parse())
            return s.headers["x-request-id"]
    except openai.APIStatusError as exc:
        return exc.response.headers["x-request-id"]
    except Exception as exc:  # noqa: BLE001 - anthropic's error classes are not openai's
        return exc.response.headers["x-request-id"]  # type: ignore[attr-defined,no-any-return]


def _forms(value: str) -> list[bytes]:
    """The value as text, and as it would read inside a JSON string."""
    return [value.encode(), orjson.dumps(value)[1:-1]]


def test_no_kept_in_value_anywhere_in_the_audit_trail(
    pii_gateways: tuple[AuditedGateway, AuditedGateway],
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sqlite, spooled = pii_gateways
    corpus = load_corpus()
    values = {v for sample in corpus for _, v in sample.sensitive}
    ids: dict[str, list[str]] = {}
    left = b""
    for gw in (sqlite, spooled):
        for workflow in PII_POLICIES:
            upstream.reset()
            for n, sample in enumerate(corpus):
                ids.setdefault(workflow, []).append(_send(gw, workflow, sample.text, n))
            if workflow == "pii_masked":
                left += b"".join(orjson.dumps(r.body) for r in upstream.received)
    # Values that left under enforcement are detection misses (the boundary's leak rate,
    # tested there): content: masked keeps what left, so they may be kept. Every other value
    # was kept in by the boundary, or only left in shadow mode, and must be nowhere here.
    missed = {v for v in values if any(f in left for f in _forms(v))}
    kept_in = values - missed
    assert len(kept_in) > 100, "the corpus should mostly be kept in"
    # The gateway's logs: everything but the SDK clients' own debug logs of what they sent.
    client = ("openai", "anthropic", "httpx", "httpcore")
    logs = "\n".join(
        r.getMessage() + (r.exc_text or "") for r in caplog.records if not r.name.startswith(client)
    )

    spool = spooled.config_dir / "audit-spool" / "audit-spool.jsonl"
    stores = {
        "sqlite database": b"".join(p.read_bytes() for p in sqlite.config_dir.glob("audit.db*")),
        "spool": spool.read_bytes(),
        "logs": logs.encode(),
    }
    assert len(stores["spool"].splitlines()) == 3 * len(corpus)
    for name, data in stores.items():
        found = sorted(v for v in kept_in if any(f in data for f in _forms(v)))
        assert found == [], f"raw values in the {name}: {found[:5]}"

    # Each request has its one record; masked text kept only where it was enforced and sent.
    for workflow, request_ids in ids.items():
        for rid in request_ids[: len(corpus)]:
            r = sqlite.one(rid)
            assert r.workflow == workflow
            if workflow == "pii_masked":
                assert r.content is not None and r.decision in ("masked", "allow")
                assert r.entities["request"] or r.decision == "allow"
            elif workflow == "pii_blocked":
                if r.decision == "deny":  # refused before it left: no text kept
                    assert r.content is None and r.reasons == ["boundary.blocked_entity"]
                    assert r.entities["request"]["block"]
                else:  # nothing in it to block: it left as it was
                    assert r.content is not None and not r.entities["request"]
            else:
                assert r.content is None and r.shadow


def test_masked_content_is_the_text_that_left(
    pii_gateways: tuple[AuditedGateway, AuditedGateway], upstream: FakeUpstream
) -> None:
    sqlite, _ = pii_gateways
    text = "Mail jane.roe@example.org or call +1 (415) 555-0199 about card 4111 1111 1111 1111."
    rid = _send(sqlite, "pii_masked", text, 0)
    sent = upstream.received[-1].body["messages"][0]["content"]
    r = sqlite.one(rid)
    assert r.content == {"request": [{"role": "user", "text": sent}]}
    assert "jane.roe@example.org" not in sent and "555-0199" not in sent
    assert r.entities["request"] == {
        "mask": {"CREDIT_CARD": 1, "PHONE_NUMBER": 1},
        "tokenize": {"EMAIL_ADDRESS": 1},
    }
    assert r.decision == "masked" and r.reasons == ["boundary.masked"]


def test_masked_content_needs_a_data_section(upstream: FakeUpstream, tmp_path: Path) -> None:
    from gateway.yamlsource import ConfigError

    bad = {"workflow": "bad", "owner": "o", "access": {"roles": ["a"], "models": ["gpt-test"]},
           "retention": {"content": "masked"}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"retention\.content: masked needs a data section"):
        start_gateway(tmp_path, upstream, policies={"bad": bad})
