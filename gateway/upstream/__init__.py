"""Upstream model APIs: providers, retries, fallback across models."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import GatewayConfig
from gateway.translate import Translating
from gateway.upstream.anthropic import AnthropicProvider
from gateway.upstream.forward import Forwarder
from gateway.upstream.mock import MockProvider
from gateway.upstream.openai import OpenAIProvider
from gateway.upstream.provider import Provider

__all__ = ["Forwarder", "Provider", "build_providers"]


def build_providers(config: GatewayConfig, env: Mapping[str, str]) -> dict[str, Provider]:
    """One provider (one connection pool) per configured provider; call inside the event loop.

    Upstream keys are read from the gateway's environment here, never from the client.
    HTTP providers take requests in either API (gateway/translate), so any model may serve
    as another's fallback; the mock answers in both APIs itself.
    """
    providers: dict[str, Provider] = {}
    for name, p in config.providers.items():
        key = env.get(p.api_key_env) if p.api_key_env else None
        if p.type == "mock":
            providers[name] = MockProvider(name)
        elif p.type == "openai":
            assert p.base_url is not None
            providers[name] = Translating(
                OpenAIProvider(name, p.base_url, key, p.max_connections, config.upstream)
            )
        else:
            assert p.base_url is not None
            providers[name] = Translating(
                AnthropicProvider(
                    name, p.base_url, key, p.max_connections, config.upstream, p.betas
                )
            )
    return providers
