"""Routing values a client chose (``model``, the workflow, an unknown route's path) reach the
audit record verbatim only when they are configured names."""

from __future__ import annotations

import re
import urllib.request
from urllib.error import HTTPError

import openai
import pytest

from gateway.audit.names import route_path, shown_name
from tests.audit.conftest import AuditedGateway

CARD = "4111111111111111"
MESSAGES = [{"role": "user", "content": "hi"}]
UNLISTED = r"<unlisted:\d+:[0-9a-f]{8}>"


def test_names_and_paths() -> None:
    assert shown_name("gpt-test", True) == "gpt-test"
    assert shown_name(None, False) is None
    hidden = shown_name(CARD, False)
    assert hidden is not None and re.fullmatch(UNLISTED, hidden) and CARD not in hidden
    assert hidden == shown_name(CARD, False)  # equal values correlate
    path = route_path(f"/w/{CARD}/v1/{CARD}?card={CARD}", {"w", "v1"}, {"chat_app"})
    assert CARD not in path and "?" not in path and path.startswith("/w/<unlisted:16:")
    assert route_path("/w/chat_app/v1/x", {"w", "v1"}, {"chat_app"}).startswith("/w/chat_app/v1/")
    assert len(route_path("/" + "a/" * 200, set(), set())) <= 128


def test_an_unconfigured_model_is_not_recorded_verbatim(audited: AuditedGateway) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        audited.openai().chat.completions.create(model=f"card {CARD}", messages=MESSAGES)  # type: ignore[arg-type]
    r = audited.one(caught.value.response.headers["x-request-id"])
    assert r.model_requested is not None and re.fullmatch(UNLISTED, r.model_requested)
    assert CARD not in r.to_json().decode()
    ok = audited.openai().chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert audited.one(ok.headers["x-request-id"]).model_requested == "gpt-test"


def test_an_unknown_route_is_recorded_with_its_path_sanitized(audited: AuditedGateway) -> None:
    url = f"{audited.url}/w/chat_app/v1/{CARD}/things?key={CARD}"
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(url), timeout=5)
    r = audited.one(caught.value.headers["x-request-id"])
    assert r.reasons == ["request.unknown_route"]
    assert r.path is not None and r.path.startswith("/w/chat_app/v1/<unlisted:16:")
    assert CARD not in r.to_json().decode()
