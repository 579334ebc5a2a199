"""Hot reload: good and broken changes, by file change and by the admin route; requests in
flight and under load each run under exactly one policy version."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests.audit.conftest import AuditedGateway, start_gateway
from tests.fakes.upstream import FakeUpstream, Stall
from tests.support.clients import TLS
from tests.support.placeholders import keyed
from tests.support.server import write_yaml

EMAIL = "Please write to jane.doe@example.com about the order."


def policy(action: str, models: list[str] | None = None) -> dict[str, Any]:
    """``chat_app`` with the e-mail rule that tells the versions apart in what left."""
    return {
        "workflow": "chat_app",
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": models or ["gpt-test"]},
        "data": {"entities": {"EMAIL_ADDRESS": action}},
    }


# What the upstream received (and echoed) under each version's rule.
SENT = {"mask": keyed("chat_app", "EMAIL_ADDRESS", "jane.doe@example.com"), "redact": "[REDACTED]"}


@pytest.fixture
def live(upstream: FakeUpstream, tmp_path: Path) -> Iterator[AuditedGateway]:
    gw, server = start_gateway(tmp_path, upstream, policies={"chat_app": policy("mask")})
    try:
        yield gw
    finally:
        server.stop()


def write_policy(gw: AuditedGateway, data: dict[str, Any] | str, name: str = "chat_app") -> None:
    """Written to a temporary name and renamed over, as deploy tools and editors do."""
    path = gw.config_dir / "policies" / f"{name}.yaml"
    tmp = path.with_suffix(".tmp")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        write_yaml(tmp, data)
    tmp.replace(path)


def reload(gw: AuditedGateway, key: str | None = None) -> httpx2.Response:
    return httpx2.post(
        f"{gw.url}/admin/policies/reload",
        headers={"authorization": f"Bearer {key or gw.admin_key}"},
        timeout=10,
        verify=TLS,
    )


def ready(gw: AuditedGateway) -> dict[str, Any]:
    body: dict[str, Any] = httpx2.get(f"{gw.url}/readyz", verify=TLS).json()
    return body


def ask(gw: AuditedGateway, model: str = "gpt-test") -> tuple[str, str, str]:
    """(request id, policy version header, answer text)."""
    raw = gw.openai().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": EMAIL}]
    )
    text = raw.parse().choices[0].message.content or ""
    return raw.headers["x-request-id"], raw.headers["x-gateway-policy-version"], text


def test_good_change_through_the_admin_route(live: AuditedGateway) -> None:
    before = ready(live)["policy_set"]
    _, v1, text = ask(live)
    assert SENT["mask"] in text
    with pytest.raises(openai.PermissionDeniedError) as denied:
        ask(live, "gpt-backup")
    assert denied.value.body["code"] == "access.model_denied"  # type: ignore[index]

    write_policy(live, policy("redact", ["gpt-test", "gpt-backup"]))
    assert reload(live, live.analyst_key).status_code == 403  # admins only
    answer = reload(live)
    assert answer.status_code == 200 and answer.json()["applied"] is True
    after = ready(live)["policy_set"]
    assert after["generation"] == before["generation"] + 1
    assert after["version"] != before["version"] and after["last_reload_error"] is None

    rid, v2, text = ask(live)
    assert v2 != v1 and v2 == ready(live)["policies"]["chat_app"] and SENT["redact"] in text
    assert live.one(rid, wait=2).policy_version == v2
    ask(live, "gpt-backup")  # the new model list is live too


def test_file_change_is_picked_up_by_the_watcher(live: AuditedGateway) -> None:
    v1 = ready(live)["policies"]["chat_app"]
    write_policy(live, policy("redact"))
    deadline = time.monotonic() + 5
    while ready(live)["policies"]["chat_app"] == v1:
        assert time.monotonic() < deadline, "the change was not picked up"
        time.sleep(0.05)
    _, version, text = ask(live)
    assert version != v1 and SENT["redact"] in text


def test_broken_change_keeps_the_last_good_set(
    live: AuditedGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="gateway.policy")
    good = ready(live)
    broken = "workflow: chat_app\nowner: t@example.com\naccess:\n  roles: [analyst]\n" \
        "  models: [gpt-test]\n  max_tokens: 5\n"  # fmt: skip
    write_policy(live, broken)
    answer = reload(live)
    assert answer.status_code == 422 and answer.json()["applied"] is False
    problems = answer.json()["policy_set"]["last_reload_error"]["problems"]
    expected = "chat_app.yaml:6: access.max_tokens: unknown key; did you mean 'max_output_tokens'?"
    assert any(expected in p for p in problems), problems
    assert any(p.startswith("chat_app.yaml:6: ") for p in problems), problems  # no host path
    state = ready(live)
    assert state["policies"] == good["policies"]
    assert state["policy_set"]["generation"] == good["policy_set"]["generation"]
    assert state["policy_set"]["last_reload_error"]["problems"] == problems
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged and "chat_app.yaml:6" in logged

    rid, version, text = ask(live)  # still served, under the last good version
    assert version == good["policies"]["chat_app"] and SENT["mask"] in text
    assert live.one(rid, wait=2).policy_version == version

    time.sleep(1.5)  # the watcher sees the same broken file: still refused, still served
    assert ready(live)["policies"] == good["policies"]

    write_policy(live, policy("redact"))  # fixed: taken, and the error is cleared
    assert reload(live).status_code == 200
    state = ready(live)
    assert state["policy_set"]["last_reload_error"] is None
    assert state["policies"]["chat_app"] != good["policies"]["chat_app"]


def test_a_removed_policy_goes_and_a_new_one_comes(live: AuditedGateway) -> None:
    other = {**policy("mask"), "workflow": "other"}
    write_policy(live, other, "other")
    assert reload(live).status_code == 200
    assert set(ready(live)["policies"]) == {"chat_app", "other"}
    ask_other = live.openai("other").chat.completions.create
    ask_other(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    (live.config_dir / "policies" / "other.yaml").unlink()
    assert reload(live).status_code == 200
    with pytest.raises(openai.NotFoundError):
        ask_other(model="gpt-test", messages=[{"role": "user", "content": "hi"}])


def test_in_flight_request_finishes_under_its_version(
    live: AuditedGateway, upstream: FakeUpstream
) -> None:
    upstream.script("gpt-up", Stall(0.6))
    result: dict[str, Any] = {}
    slow = threading.Thread(
        target=lambda: result.update(zip(("rid", "v", "text"), ask(live), strict=True))
    )
    slow.start()
    deadline = time.monotonic() + 5
    while not upstream.requests_for("gpt-up"):  # the request is with the upstream now
        assert time.monotonic() < deadline
        time.sleep(0.01)
    v1 = ready(live)["policies"]["chat_app"]
    write_policy(live, policy("redact"))
    assert reload(live).status_code == 200
    _, v2, text = ask(live)  # a new request gets the new version at once
    assert v2 != v1 and SENT["redact"] in text
    slow.join(5)
    assert result["v"] == v1 and SENT["mask"] in result["text"]
    assert live.one(result["rid"], wait=2).policy_version == v1


def test_reload_under_load(live: AuditedGateway) -> None:
    """Requests from 12 clients while the policy flips between two versions: none fails, and
    each record names the one version whose rule the request observably ran under."""
    versions: dict[str, str] = {}  # version -> action
    stop = threading.Event()
    flips = 0

    def flipper() -> None:
        nonlocal flips
        while not stop.is_set():
            action = ("redact", "mask")[flips % 2]
            write_policy(live, policy(action))
            answer = reload(live).json()
            versions[answer["policies"]["chat_app"]] = action
            flips += 1
            time.sleep(0.02)

    versions[ready(live)["policies"]["chat_app"]] = "mask"
    flipping = threading.Thread(target=flipper)
    flipping.start()
    try:
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda _: ask(live), range(240)))
    finally:
        stop.set()
        flipping.join(10)
    assert flips >= 4
    seen = set()
    for rid, version, text in results:
        record = live.one(rid, wait=2)
        assert record.policy_version == version and record.status == 200
        assert SENT[versions[version]] in text, (version, text)
        seen.add(versions[version])
    assert seen == {"mask", "redact"}


def test_broken_candidate_never_touches_live_traffic(live: AuditedGateway) -> None:
    good = ready(live)
    path = live.config_dir / "policies" / "chat_app.candidate.yaml"
    path.write_text("workflow: chat_app\nowner: t@example.com\naccess:\n  roles: [analyst]\n"
                    "  models: [gpt-9]\n")  # fmt: skip
    answer = reload(live)
    assert answer.status_code == 200  # the live set was fine
    error = ready(live)["policy_set"]["last_reload_error"]
    assert error["candidates_only"] is True
    assert any("chat_app.candidate.yaml:5: access.models: unknown model 'gpt-9'" in p
               for p in error["problems"]), error  # fmt: skip
    assert ready(live)["policy_set"]["candidates"] == {}
    rid, version, text = ask(live)
    assert version == good["policies"]["chat_app"] and SENT["mask"] in text
    assert live.one(rid, wait=2).candidate is None


def test_start_up_reports_a_broken_candidate(upstream: FakeUpstream, tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "chat_app.candidate.yaml").write_text("workflow: chat_app\n")
    gw, server = start_gateway(tmp_path, upstream, policies={"chat_app": policy("mask")})
    try:
        error = ready(gw)["policy_set"]["last_reload_error"]
        assert error["candidates_only"] and any("owner: Field required" in p
                                                for p in error["problems"])  # fmt: skip
        ask(gw)
    finally:
        server.stop()
