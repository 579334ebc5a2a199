"""The client recipes of docs/clients.md, run as written against what ``make run`` serves:
the repository's own gateway.yaml (every model on the mock) and its ``coding_agent`` workflow,
unchanged. Claude Code and Codex CLI are replayed as their request shapes (they are not
installed here; Claude Code's captured requests are replayed by test_claude_code_captured.py);
the Agents SDK and LangChain run for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import yaml

from tests.support.clients import anthropic_client
from tests.support.server import GatewayServer, new_key, write_yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = "coding_agent"


class Shipped:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.openai_url = f"{url}/w/{WORKFLOW}/v1"
        self.anthropic_url = f"{url}/w/{WORKFLOW}"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shipped]:
    root = tmp_path_factory.mktemp("recipes")
    config: dict[str, Any] = yaml.safe_load((REPO / "gateway.yaml").read_text())
    config["policies_dir"] = str(REPO / "policies")
    config["listen"] = {"host": "127.0.0.1", "port": 0}
    config["auth"]["api_keys_file"] = str(root / "keys.yaml")
    config["audit"].update(sqlite_path=str(root / "audit.db"), spool_dir=str(root / "spool"))
    path = write_yaml(root / "gateway.yaml", config)
    key = new_key(root / "keys.yaml", "dev", ["engineer"])
    # No provider variables: every model is served by the mock, as on `make run`.
    server = GatewayServer(path, {"GATEWAY_VAULT_KEY": "v" * 32}).start()
    try:
        yield Shipped(server.url, key)
    finally:
        server.stop()


def test_claude_code(shipped: Shipped) -> None:
    """ANTHROPIC_BASE_URL and ANTHROPIC_AUTH_TOKEN (a bearer token, not x-api-key): a
    streamed turn with 32k max_tokens (clamped), betas, tools, a mid-conversation system
    message, then token counting."""
    client = anthropic_client(
        base_url=shipped.anthropic_url, auth_token=shipped.key, api_key=None, max_retries=0
    )
    betas = {"anthropic-beta": "claude-code-20250219,fine-grained-tool-streaming-2025-05-14"}
    bash = {
        "name": "Bash",
        "description": "Executes a given bash command.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
    }
    messages: list[Any] = [
        {"role": "user", "content": "who committed last? ask dana@corp.example.com"},
        {"role": "system", "content": "The user is in /home/dev/shop."},
    ]
    with client.messages.with_streaming_response.create(
        model="claude-sonnet",
        max_tokens=32000,
        stream=True,
        system=[
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
        ],
        tools=[bash],  # type: ignore[list-item]
        messages=messages,
        extra_headers=betas,
        extra_query={"beta": "true"},
    ) as raw:
        assert raw.headers["x-gateway-decision"] == "masked"  # (and 32000 clamped to 16384)
        text = raw.read().decode()
    assert "event: message_stop" in text and "dana@" not in text
    assert "<EMAIL_ADDRESS_" in text  # the mock quotes what it got: the masked address
    counted = client.messages.count_tokens(
        model="claude-sonnet",
        messages=messages,
        tools=[bash],  # type: ignore[list-item]
    )
    assert counted.input_tokens > 0
    with pytest.raises(anthropic.PermissionDeniedError):  # a secret in the prompt: refused
        client.messages.create(
            model="claude-sonnet",
            max_tokens=100,
            messages=[
                {
                    "role": "user",
                    "content": "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                }
            ],
        )


def test_codex_cli(shipped: Shipped) -> None:
    """wire_api = "responses", env_key = GATEWAY_KEY: Codex's request shape (instructions,
    developer and user items of input_text, function tools with ``strict``, reasoning with
    encrypted content asked for, store false, prompt_cache_key), streamed."""
    shell = {
        "type": "function",
        "name": "shell",
        "description": "Runs a shell command and returns its output.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "array", "items": {"type": "string"}}},
            "required": ["command"],
            "additionalProperties": False,
        },
    }
    body = {
        "model": "gpt-4o",
        "instructions": "You are Codex, a coding agent running in a terminal.",
        "input": [
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "<environment_context>cwd: /home/dev/shop</environment_context>"}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "mail the diff to dana@corp.example.com"}]},
        ],
        "tools": [shell],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "4c1f7a2e-session",
        "text": {"verbosity": "medium"},
    }  # fmt: skip
    headers = {"authorization": f"Bearer {shipped.key}", "content-type": "application/json"}
    with httpx.stream(
        "POST", f"{shipped.openai_url}/responses", content=orjson.dumps(body), headers=headers
    ) as response:
        assert response.status_code == 200, response.read()
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    final = orjson.loads(events[-1])
    assert final["type"] == "response.completed"
    text = final["response"]["output"][0]["content"][0]["text"]
    assert "<EMAIL_ADDRESS_" in text and "dana@" not in "".join(events)


def test_openai_agents_sdk(shipped: Shipped) -> None:
    from agents import Agent, Runner, set_default_openai_client, set_tracing_disabled

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=shipped.openai_url, api_key=shipped.key, max_retries=0)
    set_default_openai_client(client, use_for_tracing=False)
    result = Runner.run_sync(Agent(name="a", model="gpt-4o"), "hello")
    assert str(result.final_output).endswith("You said: hello")


def test_langchain(shipped: Shipped) -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    base = shipped.anthropic_url
    key: Any = shipped.key  # the recipe's plain string (the classes type it as a SecretStr)
    chat = ChatOpenAI(model="gpt-4o", base_url=f"{base}/v1", api_key=key, use_responses_api=True)
    claude = ChatAnthropic(model="claude-sonnet", base_url=base, api_key=key)  # type: ignore[call-arg]
    embed = OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=f"{base}/v1",
        api_key=key,
        check_embedding_ctx_length=False,
    )
    assert chat.invoke("hi").text.endswith("You said: hi")
    assert claude.invoke("hi").text.endswith("You said: hi")
    assert len(embed.embed_documents(["def f(): pass"])[0]) == 1536
