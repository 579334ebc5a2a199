"""``gateway limits show``: usage and what remains, read from Redis directly or, for a
memory store, from the running gateway's ``/admin/limits``."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from tests.limits.conftest import LimitedGateway

HI = [{"role": "user", "content": "hi"}]


def show(gw: LimitedGateway, *args: str) -> subprocess.CompletedProcess[str]:
    url = () if gw.backend != "memory" else ("--url", gw.url)
    return subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(gw.root / "gateway.yaml"),
         "limits", "show", *url, *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "GATEWAY_ADMIN_KEY": gw.admin_key, "GATEWAY_VAULT_KEY": "v" * 32},
    )  # fmt: skip


def test_show_usage_and_what_remains(limited: LimitedGateway) -> None:
    key = limited.key()
    subject = f"user-{len(limited.keys)}"  # key() hands out user-N from the end
    client = limited.openai("rated", key)
    for _ in range(2):
        client.chat.completions.create(model="gpt-test", messages=HI)
    limited.openai("budgeted", key).chat.completions.create(model="gpt-test", messages=HI)

    done = show(limited, "--subject", subject, "--json")
    assert done.returncode == 0, done.stderr
    rows = {(r["workflow"], r["rule"]): r for r in map(orjson.loads, done.stdout.splitlines())}
    rpm = rows[("rated", "requests_per_minute")]
    assert (rpm["per"], rpm["subject"], rpm["limit"], rpm["used"], rpm["remaining"]) == (
        "user",
        subject,
        3,
        2,
        1,
    )
    assert 0 < rpm["resets_in_s"] <= 40
    budget = rows[("budgeted", "usd_per_day")]
    assert budget["limit"] == 0.0003 and budget["reserved"] == 0
    assert 0 < budget["used"] < 0.0001
    assert budget["remaining"] == pytest.approx(0.0003 - budget["used"])

    table = show(limited, "--workflow", "rated", "--subject", subject)
    assert table.returncode == 0, table.stderr
    assert "requests_per_minute" in table.stdout and "usd_per_day" not in table.stdout


def test_show_without_redis_or_url_says_where_to_look(limited: LimitedGateway) -> None:
    if limited.backend != "memory":
        pytest.skip("with Redis (or a Cluster) the CLI reads the counters itself")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(limited.root / "gateway.yaml"),
         "limits", "show"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "pass --url" in done.stderr
