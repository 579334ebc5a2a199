"""Console sign-ins, refused sign-ins and sign-outs are audit records on the hash chain (who,
when, which roles, the outcome; never the credential), and refusals are counted in
``gateway_console_sign_ins``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from gateway.audit.chain import Chain
from gateway.audit.sqlite import SqliteSink
from tests.console.conftest import Console
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, start_review_gateway
from tests.review.test_queue import records
from tests.support.chain import verified


def test_sign_ins_and_sign_outs_are_on_the_audit_chain(
    upstream: FakeUpstream, hook: Hook, tmp_path: Path
) -> None:
    gw = start_review_gateway(tmp_path, upstream, hook)
    wrong = "gw_" + "x" * 40
    try:
        rita = Console(gw.url, gw.reviewer)
        assert rita.status == 303
        for credential in (wrong, gw.analyst):  # not a key; a key without a console role
            refused = Console(gw.url, credential)
            assert refused.status == 401
            refused.close()
        assert rita.post("logout", {}).status_code == 303
        rita.close()
        metrics = httpx.get(f"{gw.url}/metrics").text
    finally:
        gw.server.stop()
    console = [r for r in records(gw) if r.endpoint == "console"]
    seen = [(r.reasons[0], r.subject, r.decision, r.console) for r in console]
    signed_in = seen[0][3]
    assert signed_in is not None
    session = signed_in["session"]
    assert len(session) == 16
    assert seen == [
        ("console.signed_in", "rita", "console", {
            "action": "sign_in", "outcome": "ok", "console_roles": ["reviewer"],
            "session": session, "expires": signed_in["expires"],
        }),
        ("console.sign_in_refused", None, "console", {
            "action": "sign_in", "outcome": "refused", "cause": "auth.invalid_key",
        }),
        ("console.sign_in_refused", "alice", "console", {
            "action": "sign_in", "outcome": "refused",
            "cause": "access.console_role_required",
        }),
        ("console.signed_out", "rita", "console", {
            "action": "sign_out", "outcome": "ok", "console_roles": ["reviewer"],
            "session": session,
        }),
    ]  # fmt: skip
    assert console[0].roles == ["reviewer"]
    assert console[0].auth_method == "key"
    assert console[0].key_id is not None
    assert console[2].roles == ["analyst"]
    assert console[0].time <= console[3].time
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))  # with its WAL
    for secret in (gw.reviewer, gw.analyst, wrong):
        assert secret.encode() not in raw
    assert 'gateway_console_sign_ins_total{outcome="ok"} 1.0' in metrics
    assert 'gateway_console_sign_ins_total{outcome="refused"} 2.0' in metrics

    async def verify() -> None:
        report = await verified(SqliteSink(tmp_path / "audit.db", Chain(None)))
        assert report.ok, report

    asyncio.run(verify())
