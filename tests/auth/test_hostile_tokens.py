"""Tokens an attacker (or a broken client) sends, each refused through a real HTTP call with
401, its own reason code, a Bearer challenge, and never the token in the answer."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.conftest import AuthGateway, Start
from tests.fakes.upstream import FakeUpstream
from tests.support.clients import TLS
from tests.support.tokens import SECRET, Idp, b64, hs256_with, jwk, public_pem, unsigned

MESSAGES: Any = [{"role": "user", "content": "hi"}]
Mint = Callable[[Idp], str]


def _tampered(idp: Idp) -> str:
    head, _, sig = idp.token().split(".")
    forged = b64(orjson.dumps(idp.claims(realm_access={"roles": ["sales", "gw-admin"]})))
    return f"{head}.{forged}.{sig}"


def _now() -> int:
    return int(time.time())


HOSTILE: list[tuple[str, Mint, str]] = [
    ("expired", lambda i: i.token(exp=_now() - 60), "auth.expired"),
    ("expired_eddsa", lambda i: i.token("EdDSA", kid="ed-1", exp=_now() - 60), "auth.expired"),
    ("not_yet_valid", lambda i: i.token(nbf=_now() + 600), "auth.not_yet_valid"),
    ("issued_in_future", lambda i: i.token(iat=_now() + 600), "auth.not_yet_valid"),
    ("wrong_issuer", lambda i: i.token(iss="https://evil.example"), "auth.bad_issuer"),
    ("wrong_audience", lambda i: i.token(aud="another-service"), "auth.bad_audience"),
    ("no_audience", lambda i: i.token(aud=None), "auth.missing_claim"),
    ("missing_exp", lambda i: i.token(exp=None), "auth.missing_claim"),
    ("exp_as_string", lambda i: i.token(exp=str(_now() + 300)), "auth.invalid_claims"),
    ("bad_signature", lambda i: i.token(key=i.rsa_other), "auth.bad_signature"),
    ("tampered_payload", _tampered, "auth.bad_signature"),
    (
        "es256_wrong_key",
        lambda i: i.token("ES256", kid="ec-1", key=_other_ec()),
        "auth.bad_signature",
    ),
    (
        "embedded_jwk",  # the attacker's own key in the header: never trusted
        lambda i: i.token(key=i.rsa_other, headers={"jwk": jwk(i.rsa_other, "x")}),
        "auth.bad_signature",
    ),
    (
        "hs256_with_rsa_public_key",  # key confusion: the public PEM as an HMAC secret
        lambda i: hs256_with(public_pem(i.rsa), i.claims()),
        "auth.bad_signature",
    ),
    (
        "alg_none",
        lambda i: unsigned({"alg": "none", "typ": "JWT"}, i.claims()),
        "auth.alg_not_allowed",
    ),
    ("alg_None", lambda i: unsigned({"alg": "None"}, i.claims()), "auth.alg_not_allowed"),
    (
        "alg_NONE_signed",
        lambda i: unsigned({"alg": "NONE"}, i.claims(), b"x"),
        "auth.alg_not_allowed",
    ),
    ("alg_missing", lambda i: unsigned({"typ": "JWT"}, i.claims(), b"x"), "auth.alg_not_allowed"),
    ("alg_not_listed", lambda i: i.token("HS512", key=SECRET * 2), "auth.alg_not_allowed"),
    ("unknown_kid", lambda i: i.token("ES256", kid="ec-rotated-away"), "auth.unknown_kid"),
    ("kid_of_other_key_type", lambda i: i.token("ES256", kid="ed-1"), "auth.unknown_kid"),
    (
        "kid_not_a_string",
        lambda i: unsigned({"alg": "ES256", "kid": 7}, i.claims(), b"x"),
        "auth.malformed",
    ),
    ("two_segments", lambda i: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0", "auth.malformed"),
    ("four_segments", lambda i: i.token() + ".AAAA", "auth.malformed"),
    ("not_base64", lambda i: "!!!.???.###", "auth.malformed"),
    ("header_not_json", lambda i: f"{b64(b'{nope')}.e30.AAAA", "auth.malformed"),
    ("header_not_object", lambda i: f"{b64(b'[1,2]')}.e30.AAAA", "auth.malformed"),
    ("payload_not_json", lambda i: _resigned_payload(i, b"not json"), "auth.malformed"),
    (
        "one_megabyte",
        lambda i: "eyJhbGciOiJSUzI1NiJ9." + "A" * (1024 * 1024) + ".AAAA",
        "auth.malformed",
    ),
    ("roles_not_strings", lambda i: i.token(realm_access={"roles": [1, 2]}), "auth.invalid_claims"),
    ("subject_missing", lambda i: i.token(sub=None), "auth.invalid_claims"),
    ("team_not_string", lambda i: i.token(org={"team": ["a"]}), "auth.invalid_claims"),
]


def _other_ec() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


def _resigned_payload(idp: Idp, payload: bytes) -> str:
    head = b64(b'{"alg":"HS256"}')
    signing_input = f"{head}.{b64(payload)}"
    sig = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def _call(gw: AuthGateway, token: str | bytes) -> httpx2.Response:
    auth = b"Bearer " + (token if isinstance(token, bytes) else token.encode())
    return httpx2.post(
        f"{gw.url}/w/open/v1/chat/completions",
        json={"model": "gpt-test", "messages": MESSAGES},
        headers={"authorization": auth},  # type: ignore[dict-item]
        timeout=10,
        verify=TLS,
    )


def _assert_refused(response: httpx2.Response, code: str, token: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"] == "Invalid credentials."  # the same for all
    assert (
        response.headers["www-authenticate"] == 'Bearer realm="llm-gateway", error="invalid_token"'
    )
    assert response.headers["x-gateway-decision"] == f"deny; reason={code}"
    for piece in token.split("."):
        if len(piece) > 8:
            assert piece[:64] not in response.text


@pytest.mark.parametrize(
    ("mint", "code"), [(m, c) for _, m, c in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_token_is_refused(
    jwt_gateway: AuthGateway, upstream: FakeUpstream, idp: Idp, mint: Mint, code: str
) -> None:
    token = mint(idp)
    _assert_refused(_call(jwt_gateway, token), code, token)
    assert upstream.received == []


def test_non_ascii_token(jwt_gateway: AuthGateway, idp: Idp) -> None:
    good = idp.token()
    token = good[:-4] + "é" + good[-3:]
    _assert_refused(_call(jwt_gateway, token.encode("utf-8")), "auth.malformed", token)


def test_key_confusion_with_an_rs256_only_allow_list(start_gateway: Start, idp: Idp) -> None:
    """With HS256 not allowed, the HS256-with-public-key token is refused on its alg alone."""
    gw = start_gateway(algorithms=["RS256"], secret_env=None, jwks_file=None)
    forged = hs256_with(public_pem(idp.rsa), idp.claims())
    _assert_refused(_call(gw, forged), "auth.alg_not_allowed", forged)
    assert _call(gw, idp.token()).status_code == 200


@pytest.mark.parametrize(
    ("name", "code"), [("expired", "auth.expired"), ("alg_none", "auth.alg_not_allowed"),
                       ("wrong_audience", "auth.bad_audience"), ("bad_signature", "auth.bad_signature")],
)  # fmt: skip
def test_hostile_tokens_through_both_sdks(
    jwt_gateway: AuthGateway, idp: Idp, name: str, code: str
) -> None:
    token = next(m for n, m, _ in HOSTILE if n == name)(idp)
    with pytest.raises(openai.AuthenticationError) as oai:
        jwt_gateway.openai("open", token).chat.completions.create(
            model="gpt-test", messages=MESSAGES
        )
    assert oai.value.code == code
    assert token not in oai.value.response.text
    with pytest.raises(anthropic.AuthenticationError) as ant:
        jwt_gateway.anthropic("open", token).messages.create(
            model="claude-test", max_tokens=5, messages=MESSAGES
        )
    body = ant.value.body
    assert isinstance(body, dict) and body["error"]["code"] == code
    assert body["error"]["type"] == "authentication_error"
    assert ant.value.response.headers["www-authenticate"].startswith("Bearer ")


def test_missing_credentials_get_the_bare_challenge(jwt_gateway: AuthGateway) -> None:
    response = httpx2.get(f"{jwt_gateway.url}/w/open/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.missing_key"
    assert response.headers["www-authenticate"] == 'Bearer realm="llm-gateway"'


@pytest.mark.parametrize(
    ("alg", "kid"), [("RS256", None), ("ES256", "ec-1"), ("EdDSA", "ed-1"), ("HS256", None)]
)
def test_every_key_kind_is_admitted(
    jwt_gateway: AuthGateway, idp: Idp, alg: str, kid: str | None
) -> None:
    token = idp.token(alg, kid=kid)
    reply = jwt_gateway.openai("open", token).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    assert reply.choices[0].message.content == "echo: hi"


def test_a_token_stops_working_at_its_exp_even_when_cached(
    jwt_gateway: AuthGateway, idp: Idp
) -> None:
    token = idp.token(exp=_now() + 2)
    assert _call(jwt_gateway, token).status_code == 200  # verified and cached
    assert _call(jwt_gateway, token).status_code == 200  # from the cache
    time.sleep(3.2)  # past exp and the 1 s leeway
    _assert_refused(_call(jwt_gateway, token), "auth.expired", token)


def test_tokens_never_reach_the_logs(
    jwt_gateway: AuthGateway, idp: Idp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    tokens = [idp.token(exp=_now() - 60), idp.token(key=idp.rsa_other), idp.token(aud="x")]
    for token in tokens:
        assert _call(jwt_gateway, token).status_code == 401
    good = idp.token(sub="logged")
    assert _call(jwt_gateway, good).status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "auth.expired" in logged  # the refusals are logged, with their codes
    for token in [*tokens, good]:
        for segment in token.split("."):
            assert segment not in logged


def test_a_refused_token_never_has_its_body_read(jwt_gateway: AuthGateway, idp: Idp) -> None:
    """Authentication comes first: a broken body behind a bad token is still a 401."""
    response = httpx2.post(
        f"{jwt_gateway.url}/w/open/v1/chat/completions",
        content=b"{not json",
        headers={"authorization": f"Bearer {idp.token(exp=_now() - 60)}"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.expired"
