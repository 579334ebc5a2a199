"""The rollout page: an admin pauses a workflow with a reason and the gateway answers its
requests with the paused refusal until the admin resumes it; the audit chain has who and why;
an auditor sees the state but no forms and is refused the POSTs; an aborted canary shows its
signal and figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.rollout.flags import FileFlags, entry
from tests.console.conftest import Console
from tests.fakes.upstream import FakeUpstream
from tests.review.conftest import Hook, ReviewGateway, start_review_gateway
from tests.support.server import write_yaml

STEADY: dict[str, Any] = {
    "workflow": "steady",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["gpt-test"]},
}
CANDIDATE: dict[str, Any] = {
    **STEADY,
    "owner": "canary@example.com",
    "rollout": {"percent": 10, "key": "team"},
}


@pytest.fixture(scope="module")
def gw(
    upstream: FakeUpstream, hook: Hook, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReviewGateway]:
    root = tmp_path_factory.mktemp("rollout-page")
    write_yaml(root / "policies" / "steady.candidate.yaml", CANDIDATE)
    started = start_review_gateway(root, upstream, hook, policies={"steady": STEADY})
    try:
        yield started
    finally:
        started.server.stop()


def _chat(gw: ReviewGateway) -> httpx.Response:
    with gw.client(gw.analyst) as c:
        return c.post(
            "/w/steady/v1/chat/completions",
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
        )


def _row(page: str, workflow: str) -> str:
    return page.split(f"<td>{workflow}</td>", 1)[1].split("</tr>", 1)[0]


def _rollout(gw: ReviewGateway) -> dict[str, Any]:
    with gw.client(gw.admin) as c:
        rows = c.get("/admin/rollout").json()["workflows"]
    (row,) = [r for r in rows if r["workflow"] == "steady"]
    return row  # type: ignore[no-any-return]


def test_an_admin_pauses_and_resumes_a_workflow(gw: ReviewGateway) -> None:
    assert _chat(gw).status_code == 200
    admin = Console(gw.url, gw.admin)
    try:
        row = _row(admin.get("rollout").text, "steady")
        assert "10% of 10% by team" in row  # the canary's share and key
        assert 'action="rollout-pause"' in row and "Resume" not in row
        # A pause needs a reason.
        refused = admin.post("rollout-pause", {"workflow": "steady", "reason": "  "})
        assert refused.status_code == 400 and "A reason is required" in refused.text
        assert _chat(gw).status_code == 200

        done = admin.post("rollout-pause", {"workflow": "steady", "reason": "incident 7: leaks"})
        assert (done.status_code, done.headers["location"]) == (303, "rollout")
        row = _row(admin.get("rollout").text, "steady")
        assert "paused</span> by root" in row and "incident 7: leaks" in row
        assert 'action="rollout-resume"' in row
        answer = _chat(gw)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "policy.paused"
        assert answer.headers["retry-after"]
        # The same state the admin API reads, written by the same service.
        assert _rollout(gw)["paused"]["by"] == "root"

        assert admin.post("rollout-resume", {"workflow": "steady"}).status_code == 303
        assert "Pause" in _row(admin.get("rollout").text, "steady")
        assert _chat(gw).status_code == 200
        assert admin.post("rollout-pause", {"workflow": "nope", "reason": "x"}).status_code == 404
    finally:
        admin.close()
    # Who and why, on the audit chain, as the admin API records them.
    with gw.client(gw.admin) as c:
        records = c.get("/admin/audit", params={"workflow": "steady"}).json()["records"]
    actions = {(r["subject"], tuple(r["reasons"])) for r in records}
    assert ("root", ("rollout.paused",)) in actions
    assert ("root", ("rollout.resumed",)) in actions


def test_an_auditor_sees_the_state_but_cannot_pause(gw: ReviewGateway) -> None:
    auditor = Console(gw.url, gw.auditor)
    try:
        page = auditor.get("rollout")
        assert page.status_code == 200
        assert "<td>steady</td>" in page.text and "rollout-pause" not in page.text
        tried = auditor.post("rollout-pause", {"workflow": "steady", "reason": "not mine"})
        assert tried.status_code == 403
        assert auditor.post("rollout-resume", {"workflow": "steady"}).status_code == 403
    finally:
        auditor.close()
    assert _rollout(gw)["paused"] is None
    assert _chat(gw).status_code == 200


def test_an_aborted_canary_shows_its_signal_and_figures(gw: ReviewGateway) -> None:
    version = _rollout(gw)["candidate"]["version"]
    figures = {"signal": "error_rate", "candidate": 0.31, "live": 0.01, "limit": 0.05,
               "z": 6.2, "requests": {"candidate": 80, "live": 720}}  # fmt: skip
    # The rollout service's own store, as an instance that crossed the threshold writes it.
    flags = FileFlags(gw.root / "policies")
    assert asyncio.run(flags.abort("steady", version, entry(version=version, **figures)))
    admin = Console(gw.url, gw.admin)
    try:
        for _ in range(50):  # every instance reads the switches every 250 ms
            row = _row(admin.get("rollout").text, "steady")
            if "aborted</span>" in row:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the abort never showed")
        assert "0% of 10%" in row
        assert "error_rate 0.31 against live 0.01 (limit 0.05, z 6.2" in row
        assert "80 candidate and 720 live requests" in row
    finally:
        admin.close()
