"""Redis stopped mid-run: ``on_store_error: block`` refuses with 503 limits.store_unavailable
in each API's shape, ``allow`` lets requests through and says so; both recover when Redis is
back. A private redis-server is stopped, never the shared one."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import anthropic
import openai
import pytest

from gateway.audit import AuditRecord
from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import FakeUpstream
from tests.limits.conftest import VAULT_KEY, LimitedGateway, _policy, new_prefix, write_gateway
from tests.support.privateredis import PrivateRedis
from tests.support.server import GatewayServer

HI = [{"role": "user", "content": "hi"}]
RATE = {"rate": [{"per": "user", "requests_per_minute": 1000}]}


@pytest.fixture(scope="module")
def down(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LimitedGateway, PrivateRedis]]:
    private = PrivateRedis()
    private.start()
    root = tmp_path_factory.mktemp("limits-down")
    policies = {
        "blocky": _policy("blocky", {**RATE, "on_store_error": "block"}),
        "lenient": _policy("lenient", {**RATE, "on_store_error": "allow"}),
    }
    prefix = new_prefix()
    path, keys = write_gateway(root, upstream, prefix, private.url, policies, callers=4)
    server = GatewayServer(path, {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": VAULT_KEY}).start()
    try:
        yield LimitedGateway(server.url, root, prefix, "redis", keys), private
    finally:
        server.stop()
        private.destroy()


def reasons(gw: LimitedGateway, request_id: str) -> list[str]:
    with sqlite3.connect(gw.root / "audit.db") as db:
        (body,) = db.execute(
            "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
        ).fetchone()
    return list(AuditRecord.from_json(body).reasons)


def eventually_ok(call: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            call()  # type: ignore[operator]
            return
        except openai.APIStatusError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_block_and_allow_while_redis_is_down(
    down: tuple[LimitedGateway, PrivateRedis],
) -> None:
    gw, private = down
    key = gw.key()
    blocky, lenient = gw.openai("blocky", key), gw.openai("lenient", key)
    blocky.chat.completions.create(model="gpt-test", messages=HI)
    lenient.chat.completions.create(model="gpt-test", messages=HI)

    private.stop()
    with pytest.raises(openai.InternalServerError) as caught:
        blocky.chat.completions.create(model="gpt-test", messages=HI)
    assert caught.value.status_code == 503
    assert caught.value.code == "limits.store_unavailable"
    assert reasons(gw, caught.value.response.headers["x-request-id"]) == [
        "limits.store_unavailable"
    ]
    with pytest.raises(anthropic.InternalServerError) as refused:
        gw.anthropic("blocky", key).messages.create(model="claude-test", max_tokens=10, messages=HI)
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["code"] == "limits.store_unavailable"

    raw = lenient.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    assert raw.http_response.status_code == 200
    assert raw.headers["x-gateway-decision"] == "allow; reason=limits.store_unavailable"
    assert "x-ratelimit-limit-requests" not in raw.headers  # nothing known to report
    assert reasons(gw, raw.headers["x-request-id"]) == ["limits.store_unavailable"]

    private.start()  # an empty Redis: the script is loaded again (EVALSHA, then EVAL)
    eventually_ok(lambda: blocky.chat.completions.create(model="gpt-test", messages=HI))
    raw = blocky.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    assert raw.headers["x-gateway-decision"] == "allow"
    assert raw.headers["x-ratelimit-remaining-requests"] == "998"
