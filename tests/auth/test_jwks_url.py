"""Keys fetched from the identity provider's JWKS URL (a real local HTTP server): rotation,
a flood of unknown kids, a slow provider and a provider that is down."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.auth.conftest import AuthGateway, Start
from tests.fakes.jwks import JwksServer
from tests.support.tokens import Idp, jwk, rsa_key

MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def provider(idp: Idp) -> Iterator[JwksServer]:
    server = JwksServer([jwk(idp.rsa, "k1")]).start()
    yield server
    server.stop()


def _url_gateway(start_gateway: Start, provider: JwksServer) -> AuthGateway:
    return start_gateway(
        algorithms=["RS256"],
        secret_env=None,
        public_key_files=[],
        jwks_file=None,
        jwks_url=provider.url,
    )


def _call(gw: AuthGateway, token: str) -> httpx2.Response:
    return httpx2.post(
        f"{gw.url}/w/open/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


def _code(response: httpx2.Response) -> str | None:
    return response.json()["error"]["code"] if response.status_code != 200 else None


def test_fetched_at_start_and_refreshed_on_rotation(
    start_gateway: Start, provider: JwksServer, idp: Idp
) -> None:
    gw = _url_gateway(start_gateway, provider)
    assert provider.fetches == 1  # at start-up, before the first request
    old = idp.token(kid="k1")
    assert _call(gw, old).status_code == 200
    assert _call(gw, idp.token(kid="k1")).status_code == 200
    assert provider.fetches == 1

    # The provider rotates: k1 withdrawn, k2 published. The first k2 token triggers a refresh.
    new_key = rsa_key()
    provider.set_keys([jwk(new_key, "k2")])
    assert _call(gw, idp.token(kid="k2", key=new_key)).status_code == 200
    assert provider.fetches == 2
    # The withdrawn key no longer admits anything, not even the token cached before.
    assert _code(_call(gw, old)) == "auth.unknown_kid"
    assert provider.fetches == 2  # and asking again so soon does not fetch again


def test_a_flood_of_unknown_kids_fetches_once_and_does_not_stall_others(
    start_gateway: Start, provider: JwksServer, idp: Idp
) -> None:
    gw = _url_gateway(start_gateway, provider)
    provider.delay = 0.5  # a slow provider: the flood arrives while one fetch is in flight
    good = idp.token(kid="k1")

    async def flood() -> tuple[list[httpx2.Response], float, int]:
        async with httpx2.AsyncClient(timeout=10) as client:

            async def call(token: str) -> httpx2.Response:
                return await client.post(
                    f"{gw.url}/w/open/v1/chat/completions",
                    json={"model": "gpt-test", "messages": MESSAGES},
                    headers={"authorization": f"Bearer {token}"},
                )

            forged = [idp.token(kid=secrets.token_hex(8)) for _ in range(40)]
            pending = [asyncio.ensure_future(call(t)) for t in forged]
            await asyncio.sleep(0.1)  # the refresh is now in flight
            t0 = time.monotonic()
            ok = await call(good)
            elapsed = time.monotonic() - t0
            return [*await asyncio.gather(*pending)], elapsed, ok.status_code

    refused, elapsed, status = asyncio.run(flood())
    assert status == 200
    assert elapsed < 0.3  # a known kid did not wait for the provider
    assert {_code(r) for r in refused} == {"auth.unknown_kid"}
    assert provider.fetches == 2  # start-up, then one refresh for all 40
    # Later unknown kids within the interval do not reach the provider at all.
    assert _code(_call(gw, idp.token(kid="another"))) == "auth.unknown_kid"
    assert provider.fetches == 2


def test_provider_down_keeps_known_keys(
    start_gateway: Start, provider: JwksServer, idp: Idp
) -> None:
    gw = _url_gateway(start_gateway, provider)
    provider.stop()
    # A token never seen before, signed with a key the gateway already has: admitted.
    assert _call(gw, idp.token(kid="k1", sub="new-user")).status_code == 200
    # A key the gateway does not have cannot be fetched: refused, and said why.
    t0 = time.monotonic()
    assert _code(_call(gw, idp.token(kid="k9"))) == "auth.jwks_unavailable"
    assert time.monotonic() - t0 < 3  # bounded by the fetch timeout
    # Gateway keys do not depend on the provider.
    assert _call(gw, gw.sales_key).status_code == 200


def test_provider_down_at_start(start_gateway: Start, provider: JwksServer, idp: Idp) -> None:
    provider.stop()
    t0 = time.monotonic()
    gw = _url_gateway(start_gateway, provider)
    assert time.monotonic() - t0 < 5  # starts anyway, after the bounded first fetch
    assert _code(_call(gw, idp.token(kid="k1"))) == "auth.jwks_unavailable"
    assert _call(gw, gw.sales_key).status_code == 200


def test_provider_errors_keep_known_keys(
    start_gateway: Start, provider: JwksServer, idp: Idp
) -> None:
    gw = _url_gateway(start_gateway, provider)
    provider.status = 500
    assert _code(_call(gw, idp.token(kid="k7"))) == "auth.jwks_unavailable"
    assert provider.fetches == 2
    assert _call(gw, idp.token(kid="k1", sub="other")).status_code == 200


def test_header_urls_are_never_fetched(
    start_gateway: Start, provider: JwksServer, idp: Idp
) -> None:
    """``jku``/``x5u`` in a token would let its sender pick the key: they are ignored."""
    gw = _url_gateway(start_gateway, provider)
    attacker = rsa_key()
    lure = provider.url.replace("/jwks.json", "/attacker.json")
    token = idp.token(kid="k1", key=attacker, headers={"jku": lure, "x5u": lure})
    assert _code(_call(gw, token)) == "auth.bad_signature"
    assert "/attacker.json" not in provider.hits


def test_pem_keys_do_not_stop_a_rotated_kid_being_fetched(
    start_gateway: Start, provider: JwksServer, idp: Idp
) -> None:
    gw = start_gateway(
        algorithms=["RS256"], secret_env=None, jwks_file=None, jwks_url=provider.url
    )  # keeps public_key_files: [rsa.pem]
    assert _call(gw, idp.token()).status_code == 200  # no kid: the PEM key
    rotated = rsa_key()
    provider.set_keys([jwk(rotated, "k2")])
    assert _call(gw, idp.token(kid="k2", key=rotated)).status_code == 200
    assert provider.fetches == 2
