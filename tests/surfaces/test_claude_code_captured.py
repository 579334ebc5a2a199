"""Claude Code's requests as it really sends them (captured from its wire traffic, see
tests/data/claude_code/README.md), replayed through the shipped ``coding_agent`` workflow to a
fake Anthropic upstream. Hand-written shapes miss what the client actually does (adaptive
thinking, ``context_management``, ``output_config``, a system message after the first user
turn, eight betas); these pin the gateway to the real thing: nothing refused, nothing dropped,
only what the policy masks changed."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.fakes.upstream import FakeUpstream, Received
from tests.support.server import GatewayServer, new_key, write_yaml

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "claude_code"
CAPTURED = sorted(DATA.glob("captured_*.json"))
TURNS = [p for p in CAPTURED if "count_tokens" not in p.stem]
COUNTS = [p for p in CAPTURED if "count_tokens" in p.stem]
WORKFLOW = "coding_agent"
MODEL = "claude-sonnet"  # ANTHROPIC_MODEL in the recipe; Claude Code's default is not offered
# The provider's beta allow-list: the one Claude Code sends that is not on it is dropped.
DROPPED_BETA = "context-1m-2025-08-07"
EMAIL = "dana@corp.example.com"
SECRET = "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@dataclass
class Replay:
    url: str
    key: str
    upstream: FakeUpstream


def _captured(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(path.read_bytes())
    return record


def _all_betas() -> list[str]:
    betas = {b for p in CAPTURED for b in _captured(p)["headers"]["anthropic-beta"].split(",")}
    return sorted(betas)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    root = tmp_path_factory.mktemp("claude_code")
    with FakeUpstream() as fake:
        config: dict[str, Any] = yaml.safe_load((REPO / "gateway.yaml").read_text())
        config["policies_dir"] = str(REPO / "policies")
        config["listen"] = {"host": "127.0.0.1", "port": 0}
        config["auth"]["api_keys_file"] = str(root / "keys.yaml")
        config["audit"].update(sqlite_path=str(root / "audit.db"), spool_dir=str(root / "spool"))
        allowed = [b for b in _all_betas() if b != DROPPED_BETA]
        config["providers"]["anthropic"].update(base_url=fake.base_url, betas=allowed)
        config["models"][MODEL]["provider"] = "anthropic"
        path = write_yaml(root / "gateway.yaml", config)
        key = new_key(root / "keys.yaml", "dev", ["engineer"])
        env = {"GATEWAY_VAULT_KEY": "v" * 32, "ANTHROPIC_API_KEY": "sk-ant-upstream"}
        server = GatewayServer(path, env).start()
        try:
            yield Replay(server.url, key, fake)
        finally:
            server.stop()


def _first_user_text(body: dict[str, Any]) -> dict[str, Any]:
    """The captured prompt's text block (the first user message's last text block)."""
    blocks = body["messages"][0]["content"]
    block: dict[str, Any] = [b for b in blocks if b["type"] == "text"][-1]
    return block


def _plant(body: dict[str, Any], text: str) -> None:
    """Append to the first user message: a block list (turns) or a string (token counts)."""
    first = body["messages"][0]
    if isinstance(first["content"], str):
        first["content"] += text
    else:
        _first_user_text(body)["text"] += text


def _send(replay: Replay, record: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    """POST as Claude Code does: its path (``?beta=true``), its headers, its key header."""
    headers = {**record["headers"], "x-api-key": replay.key}
    url = f"{replay.url}/w/{WORKFLOW}{record['path']}"
    return httpx.post(url, content=orjson.dumps(body), headers=headers, timeout=30)


@pytest.mark.parametrize("path", TURNS, ids=[p.stem for p in TURNS])
def test_captured_request_passes_inspected(replay: Replay, path: Path) -> None:
    record = _captured(path)
    assert record["path"] == "/v1/messages?beta=true"
    body = copy.deepcopy(record["body"])
    body["model"] = MODEL
    _plant(body, f" Mail the result to {EMAIL}.")
    replay.upstream.reset()
    response = _send(replay, record, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-decision"] == "masked"
    assert "event: message_stop" in response.text and EMAIL not in response.text

    (sent,) = replay.upstream.received
    assert sent.path == "/v1/messages"
    sent_betas = record["headers"]["anthropic-beta"].split(",")
    assert DROPPED_BETA in sent_betas
    assert sent.headers["anthropic-beta"].split(",") == [b for b in sent_betas if b != DROPPED_BETA]
    assert sent.headers["x-api-key"] == "sk-ant-upstream"  # the gateway's key, not the client's

    # Every field the client sent arrives; only the model, the clamped max_tokens and what
    # the policy masks differ (Claude Code's own prompt names noreply@anthropic.com).
    assert set(sent.body) == set(body)
    assert body["max_tokens"] == 64000 and sent.body["max_tokens"] == 16384
    assert sent.body["model"] == "claude-sonnet-4-5"
    expected = _unmasked(body, sent)
    assert sent.body == {**expected, "model": sent.body["model"], "max_tokens": 16384}
    assert EMAIL not in orjson.dumps(sent.body).decode()
    # Preserved as sent: thinking, context management, effort, metadata, cache_control.
    for field in ("thinking", "context_management", "output_config", "metadata", "stream"):
        assert sent.body[field] == body[field], field
    assert sent.body["system"] == body["system"]
    assert any(m["role"] == "system" for m in sent.body["messages"])


def _unmasked(body: dict[str, Any], sent: Received) -> dict[str, Any]:
    """The client's body with each e-mail address replaced by the placeholder the upstream
    got for it: the masking must be the ONLY change to any text."""
    text = orjson.dumps(body).decode()
    received = orjson.dumps(sent.body).decode()
    for address in (EMAIL, "noreply@anthropic.com"):
        if address not in text:
            continue
        head = text.split(address)[0][-40:]  # the placeholder follows the same context
        start = received.index(head) + len(head)
        placeholder = received[start : received.index(">", start) + 1]
        assert placeholder.startswith("<EMAIL_ADDRESS_"), placeholder
        text = text.replace(address, placeholder)
    expected: dict[str, Any] = orjson.loads(text)
    return expected


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_captured_request_with_a_secret_is_refused(replay: Replay, path: Path) -> None:
    record = _captured(path)
    body = copy.deepcopy(record["body"])
    body["model"] = MODEL
    _plant(body, f" Use {SECRET}.")
    replay.upstream.reset()
    response = _send(replay, record, body)
    assert response.status_code == 403, response.text
    error = response.json()
    assert error["type"] == "error"  # Anthropic's own error shape
    assert error["error"]["code"] == "boundary.blocked_entity"
    assert "SECRET" in error["error"]["message"]
    assert replay.upstream.received == []


def test_captured_tools_are_claude_codes() -> None:
    """What was captured is what the README says: the tool loop (a ``tool_use`` answered by a
    ``tool_result`` with cache_control), Bash among the tools, a system message mid-way."""
    turn = _captured(DATA / "captured_tool_result.json")
    body = turn["body"]
    assert [m["role"] for m in body["messages"]] == ["user", "system", "assistant", "user"]
    (result,) = body["messages"][-1]["content"]
    assert result["type"] == "tool_result" and result["cache_control"] == {"type": "ephemeral"}
    assert "Bash" in {t["name"] for t in body["tools"]}
    assert body["thinking"] == {"type": "adaptive"}


def test_the_same_address_masks_alike_in_every_turn(replay: Replay) -> None:
    """``placeholders: keyed``: both captured turns carry the address in the same prompt, and
    the upstream sees one placeholder for it, so the provider's prompt cache keeps hitting."""
    seen = set()
    for path in TURNS:
        record = _captured(path)
        body = copy.deepcopy(record["body"])
        body["model"] = MODEL
        _first_user_text(body)["text"] += f" Mail the result to {EMAIL}."
        replay.upstream.reset()
        assert _send(replay, record, body).status_code == 200
        (sent,) = replay.upstream.received
        text = _first_user_text(sent.body)["text"]
        seen.add(text[text.index("<EMAIL_ADDRESS_") :])
    assert len(seen) == 1, seen


@pytest.mark.parametrize("path", COUNTS, ids=[p.stem for p in COUNTS])
def test_captured_token_count_passes_inspected(replay: Replay, path: Path) -> None:
    """Claude Code's ``/context`` counts each prompt section and tool group separately
    (``model``, ``messages``, ``tools`` and the token-counting beta): counted upstream with the
    text masked as the turn it counts would be."""
    record = _captured(path)
    assert record["path"] == "/v1/messages/count_tokens?beta=true"
    body = copy.deepcopy(record["body"])
    body["model"] = MODEL
    _plant(body, f" Mail the result to {EMAIL}.")
    replay.upstream.reset()
    response = _send(replay, record, body)
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
    (sent,) = replay.upstream.received
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.headers["anthropic-beta"] == record["headers"]["anthropic-beta"]
    assert "token-counting-2024-11-01" in sent.headers["anthropic-beta"]
    assert sent.body == {**_unmasked(body, sent), "model": sent.body["model"]}
    assert EMAIL not in orjson.dumps(sent.body).decode()
