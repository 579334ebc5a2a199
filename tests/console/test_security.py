"""The console refuses anonymous and wrong-role access on every route, refuses a POST without
its CSRF token, and no page carries a raw value the policy kept out."""

from __future__ import annotations

import contextlib
import re
import time

import httpx
import openai
import orjson
import pytest

from tests.boundary.corpus import load_corpus
from tests.console.conftest import PII_POLICIES, Console
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import ReviewGateway
from tests.review.test_queue import records
from tests.support.clients import openai_client

GETS = ["queue", "review?id=rv_x", "explorer", "record?seq=1", "explain?seq=1", "overview",
        "policies", "rollout", "keys", "limits"]  # fmt: skip
POSTS = ["claim", "decide", "reveal", "logout", "keys-create", "keys-revoke", "rollout-pause",
         "rollout-resume"]  # fmt: skip
# Which console roles open which page.
REVIEWER_ONLY = {"queue", "review?id=rv_x", "claim", "decide"}
AUDITOR_ONLY = {"overview", "policies", "rollout"}
ADMIN_ONLY = {"keys", "limits", "keys-create", "keys-revoke", "rollout-pause", "rollout-resume"}


def test_anonymous_is_sent_to_sign_in_and_sees_no_data(console_gw: ReviewGateway) -> None:
    with httpx.Client(base_url=console_gw.url) as anon:
        for path in GETS:
            r = anon.get(f"/console/{path}")
            assert (r.status_code, r.headers["location"]) == (303, "login"), path
            assert r.content == b""
        for path in POSTS:
            r = anon.post(f"/console/{path}", data={"id": "rv_x", "verdict": "approve"})
            assert r.status_code == 401, path
            assert "rv_x" not in r.text
        # A forged session cookie is no session.
        anon.cookies.set("gw_console", "forged")
        assert anon.get("/console/queue").status_code == 303


def test_credentials_without_a_console_role_do_not_sign_in(console_gw: ReviewGateway) -> None:
    for key in (console_gw.analyst, "gwk_not_a_key", "not.a.jwt"):
        console = Console(console_gw.url, key)
        assert console.status == 401
        assert console.cookie == ""
        console.close()


@pytest.mark.parametrize("who", ["auditor", "reviewer"])
def test_each_role_is_refused_the_pages_it_does_not_hold(
    console_gw: ReviewGateway, who: str
) -> None:
    console = Console(console_gw.url, getattr(console_gw, who))
    try:
        closed = (REVIEWER_ONLY if who == "auditor" else AUDITOR_ONLY) | ADMIN_ONLY
        for path in GETS:
            status = console.get(path).status_code
            assert (status == 403) == (path in closed), (who, path, status)
        for path in ("claim", "decide", "keys-create", "keys-revoke", "rollout-pause"):
            data = {"id": "rv_x", "verdict": "approve", "subject": "x", "roles": "admin",
                    "workflow": "limited", "reason": "not theirs"}  # fmt: skip
            status = console.post(path, data).status_code
            assert (status == 403) == (path in closed), (who, path, status)
    finally:
        console.close()


def test_the_session_cookie_is_http_only_strict_and_secure_behind_tls(
    console_gw: ReviewGateway,
) -> None:
    console = Console(console_gw.url, console_gw.admin)
    cookie = console.cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    assert "Path" not in cookie  # scoped by the browser to the console's folder
    console.close()
    with httpx.Client(base_url=console_gw.url) as c:
        tls = c.post("/console/login", data={"credential": console_gw.admin},
                     headers={"x-forwarded-proto": "https"})  # fmt: skip
    assert "; Secure" in tls.headers["set-cookie"]


def test_a_post_without_its_csrf_token_is_refused(console_gw: ReviewGateway) -> None:
    gw = console_gw
    raw = openai_client(base_url=f"{gw.url}/w/held/v1", api_key=gw.analyst, max_retries=0)
    held = raw.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "write to a.b@example.com"}]
    )
    review_id = held.headers["x-gateway-review-id"]
    console = Console(gw.url, gw.reviewer)
    try:
        assert console.post("claim", {"id": review_id}, csrf=False).status_code == 403
        assert (
            console.post("claim", {"id": review_id, "csrf": "wrong"}, csrf=False).status_code == 403
        )
        other = Console(gw.url, gw.other_reviewer)  # another session's token is no good either
        assert (
            console.post("claim", {"id": review_id, "csrf": other.csrf}, csrf=False).status_code
            == 403
        )
        other.close()
        page = console.get(f"review?id={review_id}")
        assert "nobody" in page.text  # still unclaimed
        assert console.post("claim", {"id": review_id}).status_code == 303
        # Sign-out ends the session for good, even with the cookie kept.
        assert console.post("logout", {}).status_code == 303
        assert console.get("queue").status_code == 303
    finally:
        console.close()


def _forms(value: str) -> list[str]:
    return [value, orjson.dumps(value).decode()[1:-1], value.replace("&", "&amp;")]


def test_no_page_carries_a_value_the_policy_kept_out(
    console_gw: ReviewGateway, upstream: FakeUpstream
) -> None:
    gw = console_gw
    corpus = load_corpus()
    values = {v for sample in corpus for _, v in sample.sensitive}
    upstream.reset()
    for workflow in PII_POLICIES:
        client = openai_client(
            base_url=f"{gw.url}/w/{workflow}/v1", api_key=gw.analyst, max_retries=0
        )
        for sample in corpus:
            with contextlib.suppress(openai.APIStatusError):
                client.chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": sample.text}]
                )
    # Values that left under enforcement are detection misses (measured by the boundary's own
    # tests); every other value was kept in and must appear on no page.
    left = "".join(orjson.dumps(r.body).decode() for r in upstream.received)
    missed = {v for v in values if any(f in left for f in _forms(v))}
    kept_in = values - missed
    assert len(kept_in) > 50
    admin = Console(gw.url, gw.admin)
    pages: dict[str, str] = {}
    try:
        queue = admin.get("queue?state=all").text
        pages["queue"] = queue
        for review_id in set(re.findall(r"review\?id=(rv_[A-Za-z0-9_-]+)", queue)):
            pages[review_id] = admin.get(f"review?id={review_id}").text
            pages[f"api {review_id}"] = admin.http.get(
                f"/admin/reviews/{review_id}", headers={"authorization": f"Bearer {gw.admin}"}
            ).text
        explorer = "explorer"
        while explorer:
            text = admin.get(explorer).text
            pages[explorer] = text
            for seq in re.findall(r"record\?seq=(\d+)", text):
                pages[f"record {seq}"] = admin.get(f"record?seq={seq}").text
            more = re.search(r'href="(explorer\?[^"]*after=\d+)"', text)
            explorer = more.group(1).replace("&amp;", "&") if more else ""
        # explain on a few records' masked content: it runs the offline pipeline on it again
        explained = [k.split()[1] for k, t in pages.items() if "explain?seq=" in t]
        for seq in explained[-6:]:
            pages[f"explain {seq}"] = admin.get(f"explain?seq={seq}").text
        pages["overview"] = admin.get("overview").text
        pages["policies"] = admin.get("policies").text
    finally:
        admin.close()
    assert sum(1 for k in pages if k.startswith("rv_")) >= 10  # the held corpus is in the queue
    assert sum(1 for k in pages if k.startswith("record")) >= 2 * len(corpus)
    assert any("gateway policy explain --workflow pii_masked" in t for t in pages.values())
    assert any(k.startswith("explain") and "<h2>Steps</h2>" in t for k, t in pages.items())
    for name, text in pages.items():
        leaked = sorted(v for v in kept_in if any(f in text for f in _forms(v)))
        assert not leaked, f"{name} shows {leaked[:5]}"


def test_an_admin_creates_a_key_shown_once_and_revokes_it(console_gw: ReviewGateway) -> None:
    gw = console_gw
    admin = Console(gw.url, gw.admin)
    try:
        assert (
            admin.post("keys-create", {"subject": "x", "roles": "analyst"}, csrf=False).status_code
            == 403
        )
        assert (
            admin.post("keys-create", {"subject": "bad subject!", "roles": "analyst"}).status_code
            == 400
        )
        made = admin.post("keys-create", {"subject": "newbie", "roles": "analyst", "days": "3"})
        assert made.status_code == 200
        key = re.search(r'<pre class="new-key">(gwk_[^<]+)</pre>', made.text)
        assert key is not None
        key_id = key.group(1)[4:12]
        listed = admin.get("keys").text
        assert "newbie" in listed
        assert key.group(1) not in listed  # shown once, never again
        sdk = openai_client(base_url=f"{gw.url}/w/tooling/v1", api_key=key.group(1), max_retries=0)
        for _ in range(30):  # the running gateway rereads the keys file within a second
            try:
                sdk.models.list()
                break
            except openai.AuthenticationError:
                time.sleep(0.1)
        else:
            raise AssertionError("the new key was never accepted")
        assert admin.post("keys-revoke", {"key_id": key_id}).status_code == 303
        for _ in range(30):
            try:
                sdk.models.list()
                time.sleep(0.1)
            except openai.AuthenticationError:
                break
        else:
            raise AssertionError("the revoked key is still accepted")
        assert "revoked" in admin.get("keys").text
        # Both changes are on the audit chain, by the admin, with the key's id, never the key.
        changes = [r for r in records(gw) if r.endpoint == "console" and r.console
                   and r.console["action"] in ("key_create", "key_revoke")]  # fmt: skip
        assert [(r.reasons[0], r.subject, r.console["key"], r.console["key_subject"])
                for r in changes if r.console] == [
            ("console.key_created", "root", key_id, "newbie"),
            ("console.key_revoked", "root", key_id, "newbie"),
        ]  # fmt: skip
        assert changes[0].console and changes[0].console["key_roles"] == ["analyst"]
        assert key.group(1) not in str([r.console for r in changes])
        limited = openai_client(base_url=f"{gw.url}/w/limited/v1", api_key=gw.analyst)
        for _ in range(4):
            limited.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
        limits = admin.get("limits")
        assert limits.status_code == 200
        row = limits.text.split("<td>limited</td>", 1)[1].split("</tr>", 1)[0]
        assert "<td>40</td>" in row  # the limit
        assert 'value="0.100"' in row  # 4 of 40 gone: the burn-down bar
    finally:
        admin.close()
