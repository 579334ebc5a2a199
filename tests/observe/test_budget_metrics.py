"""Budget spent and remaining per workflow-wide scope, scraped from ``/metrics``: what a
burn-rate alert and a dashboard read. Per-caller budgets make no series (no caller in labels).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.observe.conftest import Observed, observed_config, value
from tests.support.server import GatewayServer, new_key, write_yaml

SPEND = {
    "workflow": "spend",
    "owner": "tests@example.com",
    "access": {"roles": ["analyst"], "models": ["mock-model"], "max_output_tokens": 200},
    "limits": {
        "budget": [
            {"per": "workflow", "usd_per_day": 10, "usd_per_month": 100},
            {"per": "user", "usd_per_day": 1},
        ]
    },
}


@pytest.fixture(scope="module")
def spending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    root = tmp_path_factory.mktemp("spending")
    path = write_yaml(root / "gateway.yaml", observed_config())
    write_yaml(root / "policies" / "spend.yaml", SPEND)
    key = new_key(root / "keys.yaml", "alice", ["analyst"])
    server = GatewayServer(path, {}).start()
    try:
        yield Observed(server.url, key, key, root)
    finally:
        server.stop()


def _gauges(gw: Observed, want: Any) -> dict[str, float]:
    """The budget gauges once the sampler (each second) has read the spend ``want`` accepts."""
    deadline = time.monotonic() + 10
    while True:
        scraped = gw.scrape()
        found = {
            f"{kind} {period}": value(
                scraped, f"gateway_budget_{kind}_usd", workflow="spend", scope="workflow",
                period=period,
            )
            for kind in ("spent", "remaining")
            for period in ("day", "month")
        }  # fmt: skip
        if want(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_spent_and_remaining_per_workflow_budget_follow_the_requests(spending: Observed) -> None:
    before = _gauges(spending, lambda g: g["remaining day"] > 0)
    assert before["spent day"] == 0 and before["remaining day"] == 10
    assert before["remaining month"] == 100
    for _ in range(3):
        assert spending.chat("spend", "hello there, what is new?").status_code == 200
    after = _gauges(spending, lambda g: g["spent day"] > 0)
    assert after["spent day"] > 0
    assert after["spent month"] == pytest.approx(after["spent day"])
    assert after["remaining day"] == pytest.approx(10 - after["spent day"])
    assert after["remaining month"] == pytest.approx(100 - after["spent month"])
    # The per-user budget has no series: a caller is never a label value.
    scraped = spending.scrape()
    scopes = {
        dict(labels).get("scope")
        for (name, labels), _ in scraped.items()
        if name.startswith("gateway_budget_")
    }
    assert scopes == {"workflow", None}  # None: gateway_budget_usd, the limits themselves
    assert not any("alice" in str(labels) for (_, labels) in scraped)
