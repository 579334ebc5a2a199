"""The policy ``data`` section: problems at file:line, and the runtime it compiles to."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.boundary.service import build_boundary, workers_key
from gateway.config import GatewayConfig
from gateway.policy import load_policies
from gateway.yamlsource import ConfigError

MODELS = {"gpt-test"}
HEAD = """\
workflow: triage
owner: ops@example.com
access: {roles: [agent], models: [gpt-test]}
data:
"""


def problems(tmp_path: Path, data: str) -> list[str]:
    (tmp_path / "triage.yaml").write_text(HEAD + data)
    with pytest.raises(ConfigError) as caught:
        load_policies(tmp_path, MODELS)
    return [str(p).split("/")[-1] for p in caught.value.problems]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "  entities:\n    EMAIL_ADRESS: mask\n",
            "triage.yaml:6: data.entities: unknown entity EMAIL_ADRESS (did you mean EMAIL_ADDRESS?)",
        ),
        (
            "  entities:\n    EMAIL_ADDRESS: mask\n    PERSON: mask\n",
            "triage.yaml:7: data.entities: entity PERSON needs an NER model: configure 'nlp: {engine: spacy, model: NAME}' in gateway.yaml",
        ),
        (
            "  entities:\n    EMAIL_ADDRESS: hide\n",
            "triage.yaml:6: data.entities.EMAIL_ADDRESS: Input should be 'allow', 'mask', 'redact', 'tokenize' or 'block'",
        ),
        (
            "  entities: {}\n  min_score: 0\n",
            "triage.yaml:6: data.min_score: Input should be greater than 0",
        ),
        (
            "  scan_outptu: true\n",
            "triage.yaml:5: data.scan_outptu: unknown key; did you mean 'scan_output'?",
        ),
        (
            "  custom:\n    - {name: CODE, pattern: 'PRJ-(', action: block}\n",
            "triage.yaml:6: data.custom[0]: custom recognizer CODE: invalid pattern: missing ), unterminated subpattern at position 4",
        ),
        (
            "  entities: {CODE: mask}\n  custom:\n    - {name: CODE, pattern: 'C-[0-9]+', action: block}\n",
            "triage.yaml:5: data.entities: CODE is a custom recognizer; set its action there",
        ),
        (
            "  entities: {EMAIL_ADDRESS: mask}\n  min_scores: {US_SSN: 0.9}\n",
            "triage.yaml:6: data.min_scores: US_SSN is not named in data.entities or data.custom",
        ),
    ],
)
def test_problems_are_reported_at_their_line(tmp_path: Path, data: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(tmp_path, data))


def test_section_compiles_once_into_detector_and_actions(tmp_path: Path) -> None:
    (tmp_path / "triage.yaml").write_text(
        HEAD + "  entities: {EMAIL_ADDRESS: tokenize, URL: allow}\n"
        "  custom:\n    - {name: CODE, pattern: 'C-[0-9]{3}', action: mask}\n"
        "  deny_terms: [Nightingale]\n"
    )
    data = load_policies(tmp_path, MODELS)["triage"].data
    assert data is not None and not data.shadow
    assert data.actions == {
        "EMAIL_ADDRESS": "tokenize",
        "URL": "allow",
        "CODE": "mask",
        "DENY_TERM": "block",
    }
    text = "a@b.io C-123 nightingale https://x.example"
    assert [(f.entity, text[f.start : f.end]) for f in data.detector.find(text)] == [
        ("EMAIL_ADDRESS", "a@b.io"),
        ("CODE", "C-123"),
        ("DENY_TERM", "nightingale"),
    ]  # URL is allowed, so it is not even looked for


def _config(tmp_path: Path, **extra: object) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {"providers": {"m": {"type": "mock"}}, "models": {}, "base_dir": tmp_path, **extra}
    )


def test_vault_key_rules(tmp_path: Path) -> None:
    build_boundary(_config(tmp_path), {})  # memory vault: a random key per process
    with pytest.raises(ConfigError, match="GATEWAY_VAULT_KEY must be at least 32 characters"):
        build_boundary(_config(tmp_path), {"GATEWAY_VAULT_KEY": "short"})
    redis = {"stores": {"redis_url": "redis://127.0.0.1:6379/0"}}
    with pytest.raises(ConfigError, match="instances sharing a Redis vault"):
        build_boundary(_config(tmp_path, **redis), {})
    build_boundary(_config(tmp_path, **redis), {"GATEWAY_VAULT_KEY": "k" * 32})


def test_workers_share_a_drawn_key_only_when_none_is_configured(tmp_path: Path) -> None:
    ((name, drawn),) = workers_key(_config(tmp_path), {}).items()
    assert name == "GATEWAY_VAULT_KEY" and len(drawn) >= 32
    assert workers_key(_config(tmp_path), {}) != {name: drawn}  # drawn afresh by each supervisor
    build_boundary(_config(tmp_path), {name: drawn})  # a key the workers accept
    assert workers_key(_config(tmp_path), {"GATEWAY_VAULT_KEY": "k" * 32}) == {}
    redis = {"stores": {"redis_url": "redis://127.0.0.1:6379/0"}}
    assert workers_key(_config(tmp_path, **redis), {}) == {}  # build_boundary refuses instead
