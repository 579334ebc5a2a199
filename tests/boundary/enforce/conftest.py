"""A gateway whose policies have ``data`` sections, in front of the shared fake upstream.

Its NER model is a real spaCy pipeline whose ``ner`` component was never initialized: spaCy
raises on every text, which is how the detector-error tests make detection fail for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import spacy

from tests.conftest import UPSTREAM_KEYS, Gateway, gateway_config
from tests.fakes.upstream import FakeUpstream
from tests.support.server import GatewayServer, new_key, write_yaml

MAIN = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "SECRET",
]
MODELS = ["gpt-test", "claude-test"]


def _policy(name: str, data: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "workflow": name,
        "owner": "tests@example.com",
        "access": {"roles": ["analyst"], "models": MODELS},
        "upstream": {"timeout_s": 5, "retries": 0},
        "data": data,
        **extra,
    }


GUARDED = {
    "entities": {
        "EMAIL_ADDRESS": "mask",
        "PHONE_NUMBER": "mask",
        "CREDIT_CARD": "block",
        "US_SSN": "redact",
        "SECRET": "block",
    },
    "custom": [{"name": "PROJECT_CODE", "pattern": "PRJ-[0-9]{5}", "action": "block"}],
    "deny_terms": ["Project Nightingale"],
    "allow_list": ["help@example.com"],
    "stream_window_chars": 64,
}

POLICIES = {
    **{
        f"act_{action}": _policy(
            f"act_{action}",
            {"entities": dict.fromkeys(MAIN, action)},
            access={"roles": ["analyst"], "models": [*MODELS, "embed-test"]},  # every endpoint
        )
        for action in ("mask", "redact", "tokenize", "block")
    },
    "guarded": _policy("guarded", GUARDED),
    "guarded_shadow": _policy("guarded_shadow", GUARDED, mode="shadow"),
    "images_ok": _policy("images_ok", {"entities": {"EMAIL_ADDRESS": "mask"}, "images": "allow"}),
    "tokens_a": _policy("tokens_a", {"entities": {"EMAIL_ADDRESS": "tokenize"}}),
    "tokens_b": _policy("tokens_b", {"entities": {"EMAIL_ADDRESS": "tokenize"}}),
    "opaque_ok": _policy(
        "opaque_ok", {"entities": {"EMAIL_ADDRESS": "mask"}, "on_uninspectable": "allow"}
    ),
    "no_thinking": _policy(
        "no_thinking", {"entities": {"EMAIL_ADDRESS": "mask"}, "thinking": "refuse"}
    ),
    "numbered": _policy(
        "numbered", {"entities": {"EMAIL_ADDRESS": "mask"}, "placeholders": "numbered"}
    ),
    "ner_block": _policy("ner_block", {"entities": {"PERSON": "mask"}}),
    "ner_allow": _policy(
        "ner_allow", {"entities": {"PERSON": "mask"}, "on_detector_error": "allow"}
    ),
}


@pytest.fixture(scope="session")
def broken_ner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("broken-ner")
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def guarded(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory, broken_ner: Path
) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("boundary-gateway")
    config = {**gateway_config(upstream), "nlp": {"engine": "spacy", "model": str(broken_ner)}}
    embed = {"provider": "openai", "upstream_model": "embed-up", "endpoints": ["embeddings"]}
    config["models"] = {**config["models"], "embed-test": embed}  # type: ignore[dict-item]
    path = write_yaml(root / "gateway.yaml", config)
    for name, policy in POLICIES.items():
        write_yaml(root / "policies" / f"{name}.yaml", policy)
    analyst = new_key(root / "keys.yaml", "alice", ["analyst"])
    other = new_key(root / "keys.yaml", "bob", ["analyst"])
    server = GatewayServer(path, UPSTREAM_KEYS).start()
    try:
        yield Gateway(server.url, analyst, other, root)
    finally:
        server.stop()
