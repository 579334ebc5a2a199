"""deploy/observability/: the alert rules pass their promtool unit tests, every PromQL
expression in them and in the dashboard names a metric the gateway exports, and a real
Prometheus scrapes a gateway under traffic and answers queries and alerts with the expected
values."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.observe.metrics import Metrics
from tests.observe.conftest import Observed, observed_config, start_observed

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
_NAME = re.compile(r"\bgateway_[a-z0-9_]+\b")


def _binary(name: str) -> str:
    """The binary, or a skip (locally) / failure (in CI, where .ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package 'prometheus'; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _exported() -> set[str]:
    """Every sample name the gateway's metrics can have."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def _expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for dashboard in (DEPLOY / "grafana").glob("*.json"):
        data = json.loads(dashboard.read_text())
        exprs += [t["expr"] for p in data["panels"] for t in p["targets"]]
        exprs += [v["definition"] for v in data["templating"]["list"] if "definition" in v]
    return exprs


def test_every_promql_expression_names_exported_metrics() -> None:
    exported = _exported()
    expressions = _expressions()
    assert len(expressions) > 20
    for expr in expressions:
        names = set(_NAME.findall(expr))
        assert names, f"no gateway metric in {expr!r}"
        assert names <= exported, f"{expr!r} names {sorted(names - exported)}"


def test_dashboard_is_templated_on_workflow() -> None:
    for dashboard in (DEPLOY / "grafana").glob("*.json"):
        data = json.loads(dashboard.read_text())
        assert any(v["name"] == "workflow" for v in data["templating"]["list"])
        per_workflow = [t["expr"] for p in data["panels"] for t in p["targets"]]
        assert sum('workflow=~"$workflow"' in e for e in per_workflow) >= 15


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    promtool = _binary("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *args], cwd=DEPLOY, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        self.url, self.proc = url, proc

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, want: float, timeout: float = 30) -> float | None:
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.scalar(promql)
            if got == want:
                break
            time.sleep(0.5)
        return got

    def alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=5)
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return alerts


@pytest.fixture
def scraped_gateway(tmp_path: Path) -> Iterator[tuple[Observed, Prometheus]]:
    binary = _binary("prometheus")
    server, gw = start_observed(tmp_path / "gw", observed_config())
    target = gw.url.removeprefix("http://")
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    shutil.copy(DEPLOY / "alerts.yml", prom_dir / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": "gateway", "static_configs": [{"targets": [target]}]}],
    }
    (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    log = (prom_dir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (prom_dir / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus did not start"
            time.sleep(0.2)
        yield gw, prom
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.stop()


def test_a_real_prometheus_scrapes_the_gateway_and_alerts(
    scraped_gateway: tuple[Observed, Prometheus],
) -> None:
    gw, prom = scraped_gateway
    for i in range(12):  # traffic while Prometheus scrapes
        assert gw.chat("notes", "hello").status_code == 200
        if i % 4 == 0:
            assert gw.chat("triage", "mail ann@example.com").status_code == 200
        time.sleep(0.1)
    assert prom.wait_for('sum(gateway_requests_total{workflow="notes"})', 12) == 12
    assert prom.wait_for('sum(gateway_requests_total{workflow="triage",decision="masked"})', 3) == 3
    assert prom.wait_for('sum(gateway_step_duration_seconds_count{step="audit"})', 15) == 15
    assert prom.scalar('max(gateway_policy_version_info{workflow="triage"})') == 1
    findings = 'sum(gateway_boundary_findings_total{entity="EMAIL_ADDRESS",action="mask"})'
    assert prom.wait_for(findings, 3) == 3
    # over everything scraped (not a rate: it holds however fast the host's clock runs)
    p95 = prom.scalar(
        "histogram_quantile(0.95, sum by (le) (gateway_request_duration_seconds_bucket))"
    )
    assert p95 is not None and 0 < p95 < 5
    # a broken policy file: the reload is refused, the shipped rule fires
    (gw.root / "policies" / "notes.yaml").write_text("workflow: notes\naccess: [broken\n")
    deadline = time.monotonic() + 30
    firing: list[str] = []
    while time.monotonic() < deadline:
        firing = [a["labels"]["alertname"] for a in prom.alerts() if a["state"] == "firing"]
        if "GatewayPolicyReloadFailing" in firing:
            break
        time.sleep(0.5)
    assert "GatewayPolicyReloadFailing" in firing
    assert "GatewayFailOpen" not in firing
