"""Which wire APIs each catalogue model can be sent in, asked of the providers themselves.

Providers are built as the gateway builds them (a pool each, no connection opened) and asked
``speaks``, so `policy explain` shows the chain the forwarder would really try.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import GatewayConfig
from gateway.normalized import Api
from gateway.surfaces import SURFACES
from gateway.upstream import build_providers

__all__ = ["model_apis"]


async def model_apis(config: GatewayConfig, env: Mapping[str, str]) -> dict[str, frozenset[Api]]:
    providers = build_providers(config, env)
    try:
        return {
            name: frozenset(a for a in SURFACES if providers[m.provider].speaks(a))
            for name, m in config.models.items()
        }
    finally:
        for provider in providers.values():
            await provider.aclose()
