"""``policy explain`` decides what the live gateway decides: on every sample policy and every
case of ``policies/tests/``, explain's verdict equals a real gateway server's (its status, its
header and its audit record), the server's models answered by a fake upstream."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.audit import AuditRecord
from gateway.auth.keys import create_key
from gateway.boundary.service import configured_ner
from gateway.config import GatewayConfig, load_config
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.tools.cases import CasePrincipal, CaseRequest, case_files, load_cases
from gateway.tools.explain import explain
from gateway.tools.offline import request_body
from tests.conftest import UPSTREAM_KEYS
from tests.fakes.upstream import FakeUpstream, Reply
from tests.support.server import GatewayServer, write_yaml

SAMPLES = Path(__file__).resolve().parents[2] / "policies"
PRICES = {  # as in the sample gateway.yaml
    "gpt-4o-mini": (0.15, 0.60, "openai"),
    "gpt-4o": (2.50, 10.00, "openai"),
    "claude-haiku": (0.80, 4.00, "anthropic"),
    "claude-sonnet": (3.00, 15.00, "anthropic"),
    "text-embedding-3-small": (0.02, 0.0, "openai"),
}
ENDPOINTS = {"text-embedding-3-small": ["embeddings"]}  # as in the sample gateway.yaml


@dataclass(frozen=True)
class Probe:
    name: str
    workflow: str
    caller: CasePrincipal
    request: CaseRequest
    answer: str | None


@dataclass
class Live:
    server: GatewayServer
    config: GatewayConfig
    policies: dict[str, CompiledPolicy]
    keys: dict[CasePrincipal, str]
    db: Path

    def record(self, request_id: str) -> AuditRecord:
        deadline = time.monotonic() + 5
        while True:
            with sqlite3.connect(self.db) as db:
                rows = db.execute(
                    "SELECT body FROM audit_records WHERE request_id = ?", (request_id,)
                ).fetchall()
            if rows or time.monotonic() > deadline:
                [(body,)] = rows
                return AuditRecord.from_json(body)
            time.sleep(0.02)


def _policies() -> dict[str, CompiledPolicy]:
    config = load_config(SAMPLES.parent / "gateway.yaml")
    return load_policies(SAMPLES, config.models, configured_ner(config))


def _probes() -> list[Probe]:
    """Every case of policies/tests/, then a plain and a sensitive message per sample policy."""
    policies = _policies()
    probes = [
        Probe(c.case.name, c.workflow, c.case.principal, c.case.request, c.case.upstream_answer)
        for c in load_cases(case_files(SAMPLES), set(policies))
    ]
    for name, policy in sorted(policies.items()):
        caller = CasePrincipal(subject="probe", roles=(sorted(policy.access.roles)[0],))
        for text in ("hello", "card 4111 1111 1111 1111 for ann@corp.example.com"):
            request = CaseRequest(
                model=policy.access.models[0], messages=[{"role": "user", "content": text}]
            )
            probes.append(Probe(f"{name}: {text}", name, caller, request, None))
    return probes


PROBES = _probes()


@pytest.fixture(scope="module")
def live(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("explain-live")
    models: dict[str, dict[str, object]] = {
        m: {"provider": p, "upstream_model": m, "usd_per_mtok_in": i, "usd_per_mtok_out": o}
        for m, (i, o, p) in PRICES.items()
    }
    for m, endpoints in ENDPOINTS.items():
        models[m]["endpoints"] = endpoints
    providers = {
        "openai": {"type": "openai", "base_url": f"{upstream.base_url}/v1",
                   "api_key_env": "OPENAI_API_KEY"},
        "anthropic": {"type": "anthropic", "base_url": upstream.base_url,
                      "api_key_env": "ANTHROPIC_API_KEY"},
    }  # fmt: skip
    path = write_yaml(
        root / "gateway.yaml",
        {
            "policies_dir": str(SAMPLES),
            "providers": providers,
            "models": models,
            "auth": {"api_keys_file": "keys.yaml"},
            "audit": {"purge_interval_s": 0},
            "breaker": {"enabled": False},
        },
    )
    keys = {
        caller: create_key(root / "keys.yaml", caller.subject, list(caller.roles), caller.team)[0]
        for caller in dict.fromkeys(p.caller for p in PROBES)
    }
    config = load_config(path, UPSTREAM_KEYS)
    policies = load_policies(SAMPLES, config.models, configured_ner(config))
    server = GatewayServer(path, UPSTREAM_KEYS).start()
    try:
        yield Live(server, config, policies, keys, root / "audit.db")
    finally:
        server.stop()


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
async def test_explain_decides_what_the_live_gateway_decides(
    probe: Probe, live: Live, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in UPSTREAM_KEYS.items():
        monkeypatch.setenv(name, value)
    upstream.reset()
    policy = live.policies[probe.workflow]
    if probe.answer is not None:  # every model the request may reach gives the case's answer
        for model in policy.model_chain(probe.request.model):
            upstream.script(model, *[Reply(probe.answer)] * 3)
    headers = {"authorization": f"Bearer {live.keys[probe.caller]}"}
    surface = probe.request.surface  # the case's API, sent on its own route
    if surface.sdk_header is not None:
        headers[surface.sdk_header] = "2023-06-01"
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{live.server.url}/w/{probe.workflow}/v1{surface.path}",
            content=request_body(probe.request, policy),
            headers={**headers, "content-type": "application/json"},
        )
    record = live.record(response.headers["x-request-id"])

    explained = await explain(
        live.config, live.policies, probe.workflow, probe.caller, probe.request, probe.answer
    )

    assert explained.status == response.status_code == record.status
    live_outcome = "transform" if record.decision == "masked" else record.decision
    assert explained.decision == live_outcome
    assert explained.reasons == list(dict.fromkeys(record.reasons))
    assert (explained.fallback, explained.review) == (record.fallback, record.review)
    if not probe.request.stream:  # a stream's header leaves before its answer is inspected
        assert explained.header == response.headers["x-gateway-decision"]
