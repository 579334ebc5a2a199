"""Build the boundary's gateway-wide parts once at start: the NER model, the vault, the key."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from gateway.boundary.actions import TokenMinter
from gateway.boundary.ner import NerModel, NerUnavailableError, load_ner
from gateway.boundary.step import Boundary
from gateway.boundary.vault import MemoryVault, RedisVault, Vault
from gateway.config import GatewayConfig
from gateway.stores import RedisClient, StoreError
from gateway.yamlsource import ConfigError, Problem

__all__ = ["PerProcessVault", "build_boundary", "configured_ner", "workers_key"]

_PER_PROCESS = (
    "a vault kept in memory is one per worker process: set stores.redis_url "
    "(or serve with --workers 1)"
)


class PerProcessVault:
    """The vault of several workers without Redis (gateway/workers.py): it refuses, so
    tokenizing fails closed instead of minting tokens only one worker could restore."""

    async def put(self, workflow: str, subject: str, items: Mapping[str, str], ttl_s: int) -> None:
        raise StoreError(_PER_PROCESS)

    async def get(self, workflow: str, subject: str, tokens: list[str]) -> dict[str, str]:
        raise StoreError(_PER_PROCESS)

    async def aclose(self) -> None:
        return None


def workers_key(config: GatewayConfig, env: Mapping[str, str]) -> dict[str, str]:
    """What the supervisor of ``gateway serve --workers N`` adds to its workers' environment:
    with no vault key configured and no Redis, one random key for all of them, so every
    worker writes the same keyed placeholders (a key per worker would mask one conversation
    to other text on each, and the provider's prompt cache would miss). It lasts as long as
    the supervisor; a configured key lasts across restarts and instances. With Redis nothing
    is added: ``build_boundary`` refuses to start without a configured key."""
    if config.vault.key_env in env or config.stores.redis_url:
        return {}
    return {config.vault.key_env: secrets.token_hex(32)}


def configured_ner(config: GatewayConfig) -> NerModel | None:
    """The NER model gateway.yaml's ``nlp`` names, loaded once; None when there is none."""
    if config.nlp is None:
        return None
    try:
        return load_ner(config.nlp.engine, config.nlp.model)
    except NerUnavailableError as exc:
        raise ConfigError(
            [Problem(str(config.base_dir / "gateway.yaml"), 0, f"nlp: {exc}")]
        ) from exc


def build_boundary(
    config: GatewayConfig,
    env: Mapping[str, str],
    redis: RedisClient | None = None,
    workers: int = 1,
) -> Boundary:
    """The vault (in ``redis``, the vault's client of ``stores.redis_url``; else in memory for
    one worker, a refusal for several) and the token key from ``vault.key_env``."""
    where = str(config.base_dir / "gateway.yaml")
    raw = env.get(config.vault.key_env)
    redis_url = config.stores.redis_url
    if raw is not None and len(raw) < 32:
        raise ConfigError(
            [Problem(where, 0, f"vault: {config.vault.key_env} must be at least 32 characters")]
        )
    if raw is None and redis_url:
        raise ConfigError(
            [
                Problem(
                    where,
                    0,
                    f"vault: set {config.vault.key_env}: instances sharing a Redis vault must "
                    "mint the same tokens",
                )
            ]
        )
    key = raw.encode() if raw is not None else secrets.token_bytes(32)
    vault: Vault
    if redis is not None:
        vault = RedisVault(redis)
    else:
        vault = MemoryVault() if workers == 1 else PerProcessVault()
    return Boundary(vault, TokenMinter(key), scan_budget_s=config.server.max_scan_cpu_s)
