"""A gateway with quality checks and fallbacks, its audit records read back from SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from tests.audit.conftest import AuditedGateway, start_gateway
from tests.fakes.upstream import FakeUpstream

BACKUP_MESSAGE = "We could not answer this automatically; a person will follow up."
ROUTE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["queue", "priority"],
    "additionalProperties": False,
    "properties": {
        "queue": {"enum": ["smb", "enterprise"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
    },
}
_ACCESS = {"roles": ["analyst"], "models": ["gpt-test", "claude-test"]}
_UPSTREAM = {"timeout_s": 5, "read_timeout_s": 0.5, "retries": 1}


def _policy(name: str, **sections: object) -> dict[str, object]:
    return {"workflow": name, "owner": "tests@example.com", "access": _ACCESS, **sections}


POLICIES: dict[str, dict[str, object]] = {
    # Unsure or refusing answers: the backup model of the same API answers instead.
    "checked": _policy(
        "checked",
        upstream=_UPSTREAM,
        quality={"min_avg_logprob": -1.0, "max_refusal": 0.5},
        fallback={
            "on": ["low_confidence", "upstream_error", "upstream_timeout"],
            "models": ["gpt-backup", "claude-backup"],
            "message": BACKUP_MESSAGE,
        },
    ),
    # A contract: JSON of a schema, never the enterprise queue; a miss is answered with the message.
    "routed": _policy(
        "routed",
        upstream=_UPSTREAM,
        quality={"json_schema": "schemas/route.json", "must_not_match": ['"enterprise"']},
        fallback={"on": ["schema_invalid", "upstream_error"], "message": BACKUP_MESSAGE},
    ),
    # The same contract without a fallback: the documented error.
    "strict_schema": _policy(
        "strict_schema", upstream=_UPSTREAM, quality={"json_schema": "schemas/route.json"}
    ),
    "passing": _policy(
        "passing", quality={"min_avg_logprob": -1.0, "must_match": ["nothing"], "streaming": "pass"}
    ),
    # The same with masking: the client is told its request was masked, not that it was unchecked.
    "passing_masked": _policy(
        "passing_masked",
        quality={"must_match": ["nothing"], "streaming": "pass"},
        data={"entities": {"EMAIL_ADDRESS": "mask"}},
    ),
    # 1.5 s for everything: retries, a failed check, the backup model.
    "deadline": _policy(
        "deadline",
        upstream={"timeout_s": 1.5, "retries": 2},
        quality={"min_avg_logprob": -1.0},
        fallback={
            "on": ["low_confidence", "upstream_error", "upstream_timeout"],
            "models": ["gpt-backup"],
        },
    ),
    # One request a minute for the whole workflow; the rest get the message.
    "limited": _policy(
        "limited",
        limits={"rate": [{"per": "workflow", "requests_per_minute": 1}]},
        fallback={"on": ["rate_limited"], "message": BACKUP_MESSAGE},
    ),
    # Data that may not leave is answered with the message and queued for review.
    "reviewed": _policy(
        "reviewed",
        data={"entities": {"CREDIT_CARD": "block"}},
        quality={"max_refusal": 0.9},  # streams are held: a blocked answer can still fall back
        fallback={"on": ["blocked", "upstream_error"], "message": BACKUP_MESSAGE, "review": True},
    ),
}


@pytest.fixture(scope="module")
def gw(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuditedGateway]:
    root = tmp_path_factory.mktemp("fallback")
    schemas = root / "policies" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "route.json").write_bytes(orjson.dumps(ROUTE_SCHEMA))
    gateway, server = start_gateway(root, upstream, policies=POLICIES)
    try:
        yield gateway
    finally:
        server.stop()
