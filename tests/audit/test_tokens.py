"""Every hostile JWT the auth tests know, refused through the SDK by a gateway that accepts
JWTs: one record each with the exact code and no principal, and the token nowhere in the
audit database."""

from __future__ import annotations

import sqlite3
from typing import Any

import openai
import pytest

from gateway.audit import AuditRecord
from tests.auth.conftest import AuthGateway, idp, jwt_gateway, start_gateway
from tests.auth.test_hostile_tokens import HOSTILE, Mint
from tests.support.clients import openai_client
from tests.support.tokens import Idp

__all__ = ["idp", "jwt_gateway", "start_gateway"]  # the auth tests' fixtures, used here

MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("mint", "code"), [(m, c) for _, m, c in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_a_refused_token_is_recorded_without_it(
    jwt_gateway: AuthGateway, idp: Idp, mint: Mint, code: str
) -> None:
    token = mint(idp)
    client = openai_client(base_url=jwt_gateway.openai_url("open"), api_key=token, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    request_id = caught.value.response.headers["x-request-id"]
    db = jwt_gateway.config_dir / "audit.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
        ).fetchall()
    assert len(rows) == 1
    r = AuditRecord.from_json(rows[0][0])
    assert (r.decision, r.reasons, r.status, r.subject, r.auth_method) == (
        "deny",
        [code],
        401,
        None,
        None,
    )
    stored = b"".join(p.read_bytes() for p in jwt_gateway.config_dir.glob("audit.db*"))
    # The token and each of its segments long enough not to occur in a hash by chance.
    for part in {token, *(p for p in token.split(".") if len(p) >= 16)}:
        assert part.encode() not in stored
