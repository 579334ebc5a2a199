"""The real pipeline in process, offline: ``gateway policy test`` runs cases through it.

Built by ``gateway.services.build_pipeline`` exactly as the server builds it, with three edges
replaced: every provider answers in process (the mock, carrying the case's canned answer,
speaking only the APIs the configured provider speaks), state lives in memory (no Redis), and
nothing is audited. Callers get gateway keys written to a scratch keys file, so authentication
is the real one. Tokens are minted with a fixed key, so a test file may spell them out.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.audit.trail import AuditTrail
from gateway.auth import Authenticator, KeyStore
from gateway.auth.keys import create_key
from gateway.config import GatewayConfig, StoresConfig
from gateway.context import RequestContext
from gateway.normalized import Api, NormalizedRequest
from gateway.pipeline import Call, Pipeline
from gateway.policy.compile import CompiledPolicy
from gateway.policy.registry import PolicyRegistry
from gateway.services import build_pipeline
from gateway.steps import decide
from gateway.surfaces import ANTHROPIC, COUNT_TOKENS, EMBEDDINGS, RESPONSES
from gateway.tools.cases import CasePrincipal, CaseRequest, Observed
from gateway.upstream import Provider, build_providers
from gateway.upstream.mock import MockProvider
from gateway.upstream.provider import Timeouts, UpstreamResponse

__all__ = [
    "OFFLINE_TOKEN_KEY",
    "OfflineGateway",
    "Run",
    "offline_config",
    "offline_environ",
    "request_body",
]

# Public on purpose: offline tokens protect nothing, they only have to be the same every run.
OFFLINE_TOKEN_KEY = "gateway-policy-test:offline-token-key"
_DEFAULT_ANTHROPIC_MAX_TOKENS = 1024
_ANTHROPIC_VERSION = "2023-06-01"


@dataclass(slots=True)
class _Exchange:
    """The one upstream exchange of the case being run: the last request's text slots."""

    answer: str | None = None
    sent: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """One request through the offline pipeline: its context (decisions, timings, what the
    steps recorded), the status, what reached the model (None: nothing) and the client's text
    (the answer, or the error's message)."""

    ctx: RequestContext
    status: int
    sent: list[str] | None
    client_text: str


class _CannedUpstream:
    """Stands in for a configured provider: speaks what it speaks, answers with the mock."""

    def __init__(self, real: Provider, exchange: _Exchange) -> None:
        self.name = real.name
        self._real = real
        self._exchange = exchange

    def speaks(self, api: Api) -> bool:
        return self._real.speaks(api)

    async def send(
        self, request: NormalizedRequest, upstream_model: str, timeouts: Timeouts
    ) -> UpstreamResponse:
        self._exchange.sent = [slot.text for slot in request.texts]
        mock = MockProvider(self.name, self._exchange.answer)
        return await mock.send(request, upstream_model, timeouts)

    async def aclose(self) -> None:
        await self._real.aclose()


def offline_config(config: GatewayConfig) -> GatewayConfig:
    """``config`` with every store in process memory: nothing offline reaches Redis."""
    return config.model_copy(update={"stores": StoresConfig()})


def offline_environ(config: GatewayConfig) -> dict[str, str]:
    """The environment with the fixed token key, so offline tokens are the same every run."""
    return {**os.environ, config.vault.key_env: OFFLINE_TOKEN_KEY}


def request_body(request: CaseRequest, policy: CompiledPolicy | None) -> bytes:
    """The JSON body a client of ``request.api`` would send."""
    surface = request.surface
    body: dict[str, Any] = {**request.body, "model": request.model}
    if surface is EMBEDDINGS:
        return orjson.dumps({**body, "input": request.input})
    if surface is RESPONSES:
        body["input"] = request.input if request.input is not None else request.messages
        if request.system is not None:
            body["instructions"] = request.system
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        return orjson.dumps({**body, "stream": request.stream})
    body["messages"] = request.messages
    if request.system is not None:
        body["system"] = request.system
    if surface is COUNT_TOKENS:  # no stream, no ceiling: it counts the prompt
        return orjson.dumps(body)
    body["stream"] = request.stream
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    elif surface is ANTHROPIC:
        ceiling = policy.access.max_output_tokens if policy else None
        body["max_tokens"] = ceiling or _DEFAULT_ANTHROPIC_MAX_TOKENS
    return orjson.dumps(body)


class OfflineGateway:
    """Use as ``async with OfflineGateway(config, policies, scratch, callers) as gw``."""

    def __init__(
        self,
        config: GatewayConfig,
        policies: dict[str, CompiledPolicy],
        scratch: Path,
        callers: list[CasePrincipal],
        *,
        upstream: bool = False,
    ) -> None:
        """``upstream``: send to the configured providers (``gateway eval``) instead of
        answering in process with the mock."""
        self._config = offline_config(config)
        self._upstream = upstream
        self._policies = policies
        self._keys_file = scratch / "keys.yaml"
        self._keys: dict[CasePrincipal, str] = {}
        for caller in dict.fromkeys(callers):
            self._keys[caller] = create_key(
                self._keys_file, caller.subject, list(caller.roles), caller.team
            )[0]
        self._exchange = _Exchange()
        self._pipeline: Pipeline | None = None

    async def __aenter__(self) -> OfflineGateway:
        config = self._config
        environ = offline_environ(config)
        providers: dict[str, Provider] = {
            name: real if self._upstream else _CannedUpstream(real, self._exchange)
            for name, real in build_providers(config, environ).items()
        }
        self._providers = providers
        self._pipeline = build_pipeline(
            config,
            environ,
            PolicyRegistry(self._policies),
            Authenticator(KeyStore(self._keys_file)),
            providers,
            AuditTrail(None),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._pipeline is not None:
            await self._pipeline.aclose()
        for provider in self._providers.values():
            await provider.aclose()

    async def run(
        self, workflow: str, caller: CasePrincipal, request: CaseRequest, answer: str | None
    ) -> Observed:
        """Send one request through every step; what it decided and what went where."""
        done = await self.send(workflow, caller, request, answer)
        verdict = decide(done.ctx.decisions)
        sent = "\n".join(done.sent) if done.sent is not None else None
        reasons = list(dict.fromkeys(verdict.reasons))
        return Observed(verdict.outcome, reasons, done.status, sent, done.client_text)

    async def send(
        self, workflow: str, caller: CasePrincipal, request: CaseRequest, answer: str | None
    ) -> Run:
        """Send one request through every step, as ``caller`` would through the server."""
        assert self._pipeline is not None
        surface = request.surface
        body = request_body(request, self._policies.get(workflow))
        headers = {"authorization": f"Bearer {self._keys[caller]}"}
        if surface.sdk_header is not None:  # the Anthropic SDK's version header
            headers[surface.sdk_header] = _ANTHROPIC_VERSION
        self._exchange.answer, self._exchange.sent = answer, None
        ctx = RequestContext(surface.endpoint, workflow)

        async def read_body() -> bytes:
            return body

        reply = await self._pipeline.complete(ctx, Call(surface, workflow, headers, read_body))
        if reply.events is not None:
            text = _stream_text(await _drain(reply.events))
        else:
            text = _body_text(reply.body)
        return Run(ctx, reply.status, self._exchange.sent, text)


async def _drain(events: AsyncIterator[bytes]) -> list[bytes]:
    return [event async for event in events]


def _body_text(body: bytes) -> str:
    """The answer's text, or the error's message for a refusal."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get("error"), dict):
        return str(data["error"].get("message", ""))
    if isinstance(data.get("choices"), list) and data["choices"]:
        return str((data["choices"][0].get("message") or {}).get("content") or "")
    blocks = data.get("content")
    if isinstance(blocks, list):
        return "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
    if isinstance(data.get("output"), list):  # a Responses answer: its message items' text
        return _output_text(data["output"])
    return ""  # vectors, a token count: no text


def _output_text(items: list[Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in items
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    )


def _stream_text(events: list[bytes]) -> str:
    """The streamed answer's text as the client pieces it together (an error event adds
    nothing: the case's reasons say why the stream ended)."""
    out: list[str] = []
    for event in events:
        for line in event.split(b"\n"):
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            data = orjson.loads(line[6:])
            if data.get("type") == "content_block_delta":
                out.append(data["delta"].get("text", ""))
            elif data.get("type") == "response.output_text.delta":
                out.append(data.get("delta") or "")
            for choice in data.get("choices") or ():
                out.append((choice.get("delta") or {}).get("content") or "")
    return "".join(out)
