"""``gateway policy promote`` and ``rollback``: a round trip with two real gateway instances
on one policies folder, picked up by their hot reload; a promotion refused by each gate,
with nothing changed; the changes recorded in the history and on the audit chain."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
import yaml

from gateway.audit import open_store
from gateway.audit.chain import verify_rows
from tests.conftest import UPSTREAM_KEYS
from tests.support.clients import TLS, openai_client
from tests.support.placeholders import keyed
from tests.support.server import GatewayServer
from tests.tools.lifecycle import EMAIL, Folder, chat_policy, keys, traffic

# What both instances (one vault key) mask the address to under the masking version.
MASKED = keyed("chat_app", "EMAIL_ADDRESS", "jane.doe@example.com")

pytestmark = pytest.mark.usefixtures("upstream")


def _promote(folder: Folder, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = folder.cli("policy", "promote", "chat_app", "--by", "ann", *args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _unchanged(folder: Folder, live_text: str) -> None:
    assert (folder.policies / "chat_app.yaml").read_text() == live_text
    assert (folder.policies / "chat_app.candidate.yaml").exists()
    assert not asyncio.run(folder.history().changes("chat_app"))


@pytest.fixture
def live_text(sqlite_folder: Folder) -> str:
    return (sqlite_folder.policies / "chat_app.yaml").read_text()


def test_refused_by_validate(
    sqlite_folder: Folder, live_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = chat_policy("redact")
    bad["access"] = {**bad["access"], "models": ["gpt-tset"]}
    sqlite_folder.write("chat_app.candidate.yaml", bad)
    code, out = _promote(sqlite_folder, capsys)
    assert code == 1
    assert "refused by the validate gate" in out
    assert "chat_app.candidate.yaml:" in out and "unknown model 'gpt-tset'" in out
    _unchanged(sqlite_folder, live_text)

    sqlite_folder.write("chat_app.candidate.yaml", live_text)  # the same version
    code, out = _promote(sqlite_folder, capsys)
    assert code == 1 and "the candidate is the live version" in out


def test_another_workflows_broken_candidate_does_not_hold_it_back(
    sqlite_folder: Folder, capsys: pytest.CaptureFixture[str]
) -> None:
    other = {**chat_policy(), "workflow": "other"}
    sqlite_folder.write("other.yaml", other)
    sqlite_folder.write("other.candidate.yaml", {**other, "mode": "sideways"})
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("redact"))
    code, out = _promote(sqlite_folder, capsys)
    assert code == 0, out
    assert (sqlite_folder.policies / "other.candidate.yaml").exists()

    # A broken live policy does: the gateway would not load the folder.
    sqlite_folder.write("other.yaml", {**other, "mode": "sideways"})
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("block"))
    code, out = _promote(sqlite_folder, capsys)
    assert code == 1 and "refused by the validate gate" in out and "other.yaml:" in out


def test_refused_by_policy_test(
    sqlite_folder: Folder, live_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = chat_policy()
    closed["access"] = {**closed["access"], "roles": ["ops"]}  # the case's caller is refused
    sqlite_folder.write("chat_app.candidate.yaml", closed)
    code, out = _promote(sqlite_folder, capsys)
    assert code == 1 and "refused by the policy_test gate" in out
    assert "a plain question is answered: decision: expected allow, got deny" in out
    _unchanged(sqlite_folder, live_text)

    (sqlite_folder.policies / "tests" / "chat_app.yaml").unlink()  # no case: refused too
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("redact"))
    code, out = _promote(sqlite_folder, capsys)
    assert code == 1 and "no cases for chat_app" in out


def test_refused_by_evaluation(sqlite_folder: Folder, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        {"name": "plain", "messages": [{"role": "user", "content": "hi"}],
         "expect": {"decision": "allow"}},
        {"name": "e-mail masked, not refused", "messages": [{"role": "user", "content": EMAIL}],
         "expect": {"decision": "transform"}},
    ]  # fmt: skip
    sqlite_folder.write(
        "evals/chat_app.jsonl", "".join(orjson.dumps(c).decode() + "\n" for c in cases)
    )
    evaluation = {"set": "evals/chat_app.jsonl", "target": 1.0}
    sqlite_folder.write("chat_app.yaml", chat_policy(evaluation=evaluation))
    live_text = (sqlite_folder.policies / "chat_app.yaml").read_text()
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("block"))  # held to live's set
    code, out = _promote(sqlite_folder, capsys, "--offline")
    assert code == 1 and "refused by the evaluation gate" in out
    assert "pass_rate 0.500 (1/2) against target 1.000: below target" in out
    assert "e-mail masked, not refused: decision: expected transform, got deny" in out
    _unchanged(sqlite_folder, live_text)
    [run] = asyncio.run(sqlite_folder.history().eval_runs("chat_app"))
    assert run.candidate and run.value == 0.5  # the gate's run is recorded like any other


def test_refused_by_unaccepted_replay_changes(
    sqlite_folder: Folder, live_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    live = sqlite_folder.version()
    masked = {"request": {"mask": {"EMAIL_ADDRESS": 1}}}
    sqlite_folder.store_records(
        traffic(live, 3, 1, entities=masked, reasons=["boundary.masked"], decision="transform")
        + traffic(live, 5, 10)
    )
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("block"))
    code, out = _promote(sqlite_folder, capsys)
    assert code == 1 and "refused by the replay gate" in out
    assert "8 records: newly blocked 3, newly allowed 0, action changes 0, undecidable 0" in out
    assert out.count("newly_blocked req-") == 3
    assert "pass --accept-changes" in out
    _unchanged(sqlite_folder, live_text)

    code, out = _promote(sqlite_folder, capsys, "--accept-changes", "--reason", "no mail out")
    assert code == 0, out
    assert "3 change(s) accepted" in out
    [change] = asyncio.run(sqlite_folder.history().changes("chat_app"))
    assert (change.by, change.reason, change.from_version) == ("ann", "no mail out", live)
    assert "3 change(s) accepted" in change.detail["gates"]["replay"]

    # An older window has no traffic: nothing to accept.
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("redact"))
    code, out = _promote(sqlite_folder, capsys, "--since", str(time.time() + 5))
    assert code == 0 and "no recorded traffic in the window" in out


def _canary(**abort_on: Any) -> dict[str, Any]:
    rollout = {"percent": 10, "key": "subject", "abort_on": {"min_requests": 20, **abort_on}}
    return chat_policy("redact", rollout=rollout)


def test_refused_by_canary_signals(
    sqlite_folder: Folder, live_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = sqlite_folder
    live = folder.version()
    folder.write("chat_app.candidate.yaml", _canary(error_rate=0.05, latency_p95=2.0))
    candidate = asyncio.run(_candidate_version(folder))
    folder.store_records(traffic(live, 40, 1) + traffic(candidate, 10, 100))
    code, out = _promote(folder, capsys, "--accept-changes")
    assert code == 1 and "refused by the canary gate" in out
    assert "10 candidate and 40 live requests in the window, fewer than min_requests 20" in out
    _unchanged(folder, live_text)

    # Enough requests now, but the candidate errs on a quarter of them and is slower.
    folder.store_records(
        traffic(candidate, 10, 200, decision="error", status=502, latency_ms=9.0)
        + traffic(candidate, 20, 300)
    )
    code, out = _promote(folder, capsys, "--accept-changes")
    assert code == 1 and "over the abort_on thresholds (40 candidate and 40 live requests)" in out
    assert "error_rate: candidate 0.250 vs live 0.000, more than 0.050 above" in out
    assert "latency_p95: candidate 9 vs live 1, more than 2.0x" in out
    _unchanged(folder, live_text)

    folder.write("chat_app.candidate.yaml", _canary(error_rate=0.5, latency_p95=10.0))
    candidate = asyncio.run(_candidate_version(folder))
    folder.store_records(traffic(candidate, 40, 400))
    code, out = _promote(folder, capsys, "--accept-changes")
    assert code == 0, out
    assert "within the abort_on thresholds over 40 candidate and 40 live requests" in out


async def _candidate_version(folder: Folder) -> str:
    from gateway.policy.candidates import load_candidates
    from gateway.policy.loader import load_policies

    config = folder.config()
    live = load_policies(folder.policies, config.models)
    return load_candidates(folder.policies, live, config.models)["chat_app"].version


# The round trip: two instances, one folder, the hot reload takes each change.


@pytest.fixture
def instances(folder: Folder) -> Iterator[tuple[list[str], str]]:
    analyst, _ = keys(folder)
    env = {**UPSTREAM_KEYS, **folder.env}
    servers = [GatewayServer(folder.config_path, env).start() for _ in range(2)]
    try:
        yield [s.url for s in servers], analyst
    finally:
        for server in servers:
            server.stop()


def _ask(url: str, key: str) -> tuple[str, str]:
    client = openai_client(base_url=f"{url}/w/chat_app/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": EMAIL}]
    )
    return raw.headers["x-gateway-policy-version"], raw.parse().choices[0].message.content or ""


def _all_serve(urls: list[str], key: str, version: str) -> list[str]:
    """Wait until every instance's /readyz shows ``version``; then each one's answer."""
    deadline = time.monotonic() + 10
    for url in urls:
        while httpx2.get(f"{url}/readyz", verify=TLS).json()["policies"]["chat_app"] != version:
            assert time.monotonic() < deadline, f"{url} did not reload to {version}"
            time.sleep(0.05)
    texts = []
    for url in urls:
        served, text = _ask(url, key)
        assert served == version
        texts.append(text)
    return texts


def test_promote_and_rollback_round_trip(
    folder: Folder,
    instances: tuple[list[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    urls, key = instances
    v1 = folder.version()
    assert all(MASKED in t for t in _all_serve(urls, key, v1))
    first_text = (folder.policies / "chat_app.yaml").read_text()

    folder.write("chat_app.candidate.yaml", chat_policy("redact"))
    code, out = _promote(folder, capsys)  # the traffic above is re-decided: mask -> redact
    assert code == 1 and "refused by the replay gate" in out and "action changes 2" in out
    code, out = _promote(folder, capsys, "--accept-changes", "--reason", "redact mail")
    assert code == 0, out
    v2 = folder.version()
    assert v2 != v1 and f"promoted chat_app: {v1} -> {v2}" in out
    assert not (folder.policies / "chat_app.candidate.yaml").exists()
    assert (
        folder.policies / ".history" / "chat_app" / f"{v1.replace(':', '-')}.yaml"
    ).read_text() == first_text
    assert all("[REDACTED]" in t for t in _all_serve(urls, key, v2))

    capsys.readouterr()
    assert folder.cli("policy", "rollback", "chat_app", "--by", "bob", "--reason", "oops") == 0
    assert f"rolled back chat_app: {v2} -> {v1}" in capsys.readouterr().out
    assert (folder.policies / "chat_app.yaml").read_text() == first_text
    assert all(MASKED in t for t in _all_serve(urls, key, v1))

    # --to names any recorded version, by prefix: forward again.
    assert folder.cli("policy", "rollback", "chat_app", "--to", v2[:12], "--by", "bob") == 0
    assert all("[REDACTED]" in t for t in _all_serve(urls, key, v2))
    assert folder.cli("policy", "rollback", "chat_app", "--to", "sha256:0000") == 1

    changes = asyncio.run(folder.history().changes("chat_app"))
    assert [(c.action, c.from_version, c.to_version, c.by) for c in changes] == [
        ("promote", v1, v2, "ann"), ("rollback", v2, v1, "bob"), ("rollback", v1, v2, "bob"),
    ]  # fmt: skip
    capsys.readouterr()
    assert folder.cli("policy", "history", "chat_app") == 0
    history = capsys.readouterr().out
    assert "promote   " + v2 in history and "by ann: redact mail" in history

    # Each change is a record on the audit chain, which still verifies.
    async def chain() -> list[Any]:
        store = open_store(folder.config(), folder.env)
        try:
            rows = [r async for r in store.rows()]
            report = await verify_rows(
                store.chain, store.rows(), await store.checkpoint(), await store.head()
            )
            assert report.ok, report
            return [r.record() for r in rows if r.record() and r.record().endpoint == "policy"]  # type: ignore[union-attr]
        finally:
            await store.close()

    records = asyncio.run(chain())
    assert [(r.decision, r.subject, r.policy_change["from"], r.policy_change["to"]) for r in records] == [
        ("promote", "ann", v1, v2), ("rollback", "bob", v2, v1), ("rollback", "bob", v1, v2),
    ]  # fmt: skip
    assert "redact mail" not in str(records[0])  # the reason's hash, not its text


def test_nothing_changes_when_the_change_cannot_be_recorded(
    sqlite_folder: Folder, live_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(sqlite_folder.config_path.read_text())
    config["stores"] = {"audit_url": "postgresql://postgres@127.0.0.1:9/test"}  # nothing there
    sqlite_folder.config_path.write_text(yaml.safe_dump(config))
    sqlite_folder.write("chat_app.candidate.yaml", chat_policy("redact"))
    code, out = _promote(sqlite_folder, capsys)
    assert code == 2 and "nothing changed: the promotion cannot be recorded" in out
    assert (sqlite_folder.policies / "chat_app.yaml").read_text() == live_text
    assert (sqlite_folder.policies / "chat_app.candidate.yaml").exists()
    capsys.readouterr()
    assert sqlite_folder.cli("policy", "rollback", "chat_app", "--to", "sha256:00") == 2
    assert "nothing changed: the rollback cannot be recorded" in capsys.readouterr().err
    assert (sqlite_folder.policies / "chat_app.yaml").read_text() == live_text
