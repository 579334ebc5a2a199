"""Two gateway instances sharing a Redis vault and a token key: a token minted by one is
restored by the other, for the same caller only."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
import redis

from tests.boundary.enforce.conftest import POLICIES
from tests.conftest import UPSTREAM_KEYS, Gateway, gateway_config
from tests.fakes.upstream import FakeUpstream, Reply
from tests.support.server import GatewayServer, new_key, write_yaml

EMAIL = "jane.doe@acme-corp.com"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def pair(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, Gateway]]:
    root = tmp_path_factory.mktemp("shared-vault")
    config = {**gateway_config(upstream), "stores": {"redis_url": REDIS_URL}}
    path = write_yaml(root / "gateway.yaml", config)
    write_yaml(root / "policies" / "tokens_a.yaml", POLICIES["tokens_a"])
    alice = new_key(root / "keys.yaml", "alice", ["analyst"])
    bob = new_key(root / "keys.yaml", "bob", ["analyst"])
    # A fresh key per run: tokens (and so vault entries) from earlier runs cannot match.
    env = {**UPSTREAM_KEYS, "GATEWAY_VAULT_KEY": secrets.token_hex(32)}
    one = GatewayServer(path, env).start()
    two = GatewayServer(path, env).start()
    try:
        yield Gateway(one.url, alice, bob, root), Gateway(two.url, alice, bob, root)
    finally:
        one.stop()
        two.stop()


def test_token_minted_by_one_instance_is_restored_by_another(
    pair: tuple[Gateway, Gateway], upstream: FakeUpstream
) -> None:
    one, two = pair
    one.openai("tokens_a").chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": f"mail {EMAIL}"}]
    )
    (token,) = re.findall(r"<EMAIL_ADDRESS#[a-z2-7]{12}>", str(upstream.received[0].body))
    keys = redis.Redis.from_url(REDIS_URL).keys(f"gw:vault:{{tokens_a}}:alice:{token}")
    assert len(keys) == 1
    upstream.script("gpt-up", Reply(f"wrote to {token}"), Reply(f"wrote to {token}"))
    ask = [{"role": "user", "content": "who?"}]
    mine = two.openai("tokens_a").chat.completions.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
    assert mine.choices[0].message.content == f"wrote to {EMAIL}"
    other = two.openai("tokens_a", two.ops_key).chat.completions.create(
        model="gpt-test",
        messages=ask,  # type: ignore[arg-type]
    )
    assert other.choices[0].message.content == f"wrote to {token}"
