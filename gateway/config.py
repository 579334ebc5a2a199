"""``gateway.yaml``: what is not per workflow (listen address, providers, models, auth).

Strings may use ``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an
error naming the line, so a missing secret is caught at start-up and not at the first call.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from gateway.console.settings import ConsoleConfig
from gateway.observe.config import ObserveConfig
from gateway.review.spec import ReviewConfig
from gateway.surfaces import CHAT_ENDPOINTS, SURFACES
from gateway.yamlsource import ConfigError, Problem, line_of, load_model

__all__ = [
    "JWT_ALGORITHMS",
    "AuditConfig",
    "AuthConfig",
    "BreakerConfig",
    "GatewayConfig",
    "JwtConfig",
    "LimitsConfig",
    "ListenConfig",
    "ModelConfig",
    "NlpConfig",
    "ProviderConfig",
    "ServerConfig",
    "StoresConfig",
    "UpstreamConfig",
    "VaultConfig",
    "interpolate",
    "load_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# What one call to the shared Redis may cost a request, connecting included.
StoreTimeoutMs = Annotated[float, Field(gt=0, le=60_000)]


class ListenConfig(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


class ProviderConfig(_Strict):
    """An upstream API. ``mock`` answers in process and needs neither URL nor key."""

    type: Literal["openai", "anthropic", "mock"]
    base_url: str | None = None
    api_key_env: str | None = None
    max_connections: Annotated[int, Field(ge=1)] = 256
    # Anthropic beta flags (``anthropic-beta``) forwarded to this provider: None forwards the
    # client's as sent; a list keeps only those (an upstream that rejects a beta it lacks).
    betas: list[Annotated[str, Field(min_length=1)]] | None = None

    @model_validator(mode="after")
    def _url_for_http_providers(self) -> ProviderConfig:
        if self.type != "mock" and not self.base_url:
            raise ValueError(f"a provider of type '{self.type}' needs a base_url")
        return self


class ModelConfig(_Strict):
    """A model clients may name, the provider that serves it and its prices."""

    provider: str
    upstream_model: str
    usd_per_mtok_in: Annotated[float, Field(ge=0)] | None = None
    usd_per_mtok_out: Annotated[float, Field(ge=0)] | None = None
    # The endpoints (gateway.surfaces) this model serves; unset: the chat-style ones
    # (chat, messages, responses, count_tokens). An embedding model says [embeddings].
    endpoints: Annotated[list[str], Field(min_length=1)] | None = None

    @field_validator("endpoints")
    @classmethod
    def _known_endpoints(cls, endpoints: list[str] | None) -> list[str] | None:
        known = {s.endpoint for s in SURFACES.values()}
        for endpoint in endpoints or ():
            if endpoint not in known:
                raise ValueError(f"unknown endpoint '{endpoint}' (known: {sorted(known)})")
        return endpoints

    def serves(self, endpoint: str) -> bool:
        return endpoint in (self.endpoints if self.endpoints is not None else CHAT_ENDPOINTS)


# ``none`` is not in the list, so no configuration can accept an unsigned token.
JWT_ALGORITHMS = (
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
ClaimPath = Annotated[str, StringConstraints(pattern=r"^[^.\s]+(\.[^.\s]+)*$")]


class JwtConfig(_Strict):
    """Tokens from the company's identity provider; ``exp`` is always required.

    HS* tokens are checked only against the secret in ``secret_env``, the others only against
    the public keys, so no key is ever read as the other kind (the HS256-with-public-key attack).
    """

    issuer: str
    audience: str | Annotated[list[str], Field(min_length=1)]
    algorithms: Annotated[list[str], Field(min_length=1)]
    secret_env: str | None = None
    public_key_files: list[str] = []
    jwks_file: str | None = None
    jwks_url: str | None = None
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 0.0
    subject_claim: ClaimPath = "sub"
    roles_claim: ClaimPath = "roles"
    team_claim: ClaimPath | None = None

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, algorithms: list[str]) -> list[str]:
        for alg in algorithms:
            if alg.lower() == "none":
                raise ValueError("'none' is never accepted: unsigned tokens prove nothing")
            if alg not in JWT_ALGORITHMS:
                raise ValueError(f"unknown algorithm '{alg}' (known: {', '.join(JWT_ALGORITHMS)})")
        return algorithms

    @model_validator(mode="after")
    def _keys_for_algorithms(self) -> JwtConfig:
        symmetric = [a for a in self.algorithms if a.startswith("HS")]
        if symmetric and not self.secret_env:
            raise ValueError(f"{', '.join(symmetric)} need secret_env")
        if self.secret_env and not symmetric:
            raise ValueError("secret_env is set but no HS* algorithm is allowed")
        public = [a for a in self.algorithms if not a.startswith("HS")]
        has_public = self.public_key_files or self.jwks_file or self.jwks_url
        if public and not has_public:
            raise ValueError(f"{', '.join(public)} need public_key_files, jwks_file or jwks_url")
        if has_public and not public:
            raise ValueError("public keys are configured but no RS*/PS*/ES*/EdDSA algorithm is")
        if self.jwks_url and not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError("jwks_url must be an http(s) URL")
        return self


class AuthConfig(_Strict):
    api_keys_file: str = "keys.yaml"
    jwt: JwtConfig | None = None
    # The only role that opens /admin/...; no policy or other setting grants it.
    admin_role: Annotated[str, Field(min_length=1)] = "admin"
    # Every role keys and the identity provider issue; policy lint checks access.roles against
    # it (docs/policy-lifecycle.md). Unset, a role no gateway key holds is only a warning.
    roles: list[Annotated[str, Field(min_length=1)]] | None = None


class NlpConfig(_Strict):
    """The NER model PERSON and LOCATION need: an installed spaCy model package, loaded once.

    Nothing is downloaded: a model that is not installed stops the gateway at start-up.
    """

    engine: Literal["spacy"] = "spacy"
    model: Annotated[str, Field(min_length=1)]


class StoresConfig(_Strict):
    """Shared state. With no ``redis_url`` it lives in process memory (one instance); with no
    ``audit_url`` the audit trail is the SQLite file ``audit.sqlite_path``.

    ``redis_url``: ``redis://``, ``rediss://`` (TLS), ``unix://`` or, for Redis Cluster,
    ``redis+cluster://`` / ``rediss+cluster://``. ``key_prefix`` starts every key this
    gateway writes there, each user under its own name (``gw:lim``, ``gw:vault``,
    ``gw:breaker``), so deployments can share one Redis.
    """

    redis_url: (
        Annotated[str, StringConstraints(pattern=r"^(rediss?(\+cluster)?|unix)://.+")] | None
    ) = None
    key_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "gw"
    audit_url: Annotated[str, StringConstraints(pattern=r"^postgres(ql)?://")] | None = None


class VaultConfig(_Strict):
    """The HMAC key of tokens and keyed placeholders comes from the environment variable
    ``key_env`` (at least 32 characters). Unset, a memory vault draws a random key per process
    (one for all workers of ``--workers N``); a Redis vault, shared by instances that must mint
    the same tokens, refuses to start."""

    key_env: str = "GATEWAY_VAULT_KEY"
    # With stores.redis_url: what one vault call may cost before the request fails closed
    # (503 boundary.vault_unavailable).
    store_timeout_ms: StoreTimeoutMs = 250.0


class AuditConfig(_Strict):
    """How audit records are written (docs/audit.md).

    ``sync``: a response is not completed until its record is durable (committed, or fsync'd
    to the spool). ``async``: it is, and a crash can lose the records of the last
    ``max_delay_ms`` plus one commit. ``on_failure`` decides when neither the sink nor the
    spool can take a record: ``block`` answers 503 ``audit.unavailable`` instead.
    """

    enabled: bool = True  # false only for benchmarks: no record is kept at all
    durability: Literal["sync", "async"] = "sync"
    on_failure: Literal["block", "allow"] = "block"
    sqlite_path: str = "audit.db"
    pg_schema: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "audit"
    spool_dir: str = "audit-spool"
    batch_max: Annotated[int, Field(ge=1, le=10_000)] = 256
    max_delay_ms: Annotated[float, Field(ge=0, le=10_000)] = 5.0  # async mode only
    queue_max: Annotated[int, Field(ge=1)] = 100_000
    key_env: str = "GATEWAY_AUDIT_KEY"  # HMAC key of the hash chain; unset: plain SHA-256
    default_days: Annotated[int, Field(ge=1)] = 90  # records of no known workflow
    purge_interval_s: Annotated[float, Field(ge=0)] = 3600.0  # 0: only `gateway audit purge`


class LimitsConfig(_Strict):
    """gateway.yaml ``limits``: with ``stores.redis_url``, what one store call may cost a
    request before the policy's ``on_store_error`` applies (keys: ``stores.key_prefix``)."""

    store_timeout_ms: Annotated[float, Field(gt=0, le=60_000)] = 250.0


class BreakerConfig(_Strict):
    """The circuit breaker per provider and model (docs/quality-and-fallbacks.md): it opens after
    ``failures`` consecutive failed attempts, or ``error_rate`` of at least ``min_calls``
    attempts within ``window_s``, fails fast for ``open_s``, then lets one probe through."""

    enabled: bool = True
    failures: Annotated[int, Field(ge=1)] = 5
    error_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    window_s: Annotated[float, Field(gt=0)] = 30.0
    min_calls: Annotated[int, Field(ge=1)] = 20
    open_s: Annotated[float, Field(gt=0)] = 30.0
    # With stores.redis_url: circuits shared by every instance (two script calls per attempt,
    # keys under stores.key_prefix); shared: false keeps them per instance (no round trip).
    shared: bool = True
    # What one call to the shared store may cost before the attempt goes ahead on the
    # circuit's last known state (fail open); after a failure the store is left alone for
    # store_backoff_ms, so an unreachable Redis costs one timeout per back-off, not per call.
    store_timeout_ms: StoreTimeoutMs = 50.0
    store_backoff_ms: Annotated[float, Field(ge=0, le=600_000)] = 1000.0


# orjson's encoder stops at 254 levels: a body the gateway accepts must be one it can write.
ENCODER_MAX_DEPTH = 254


class ServerConfig(_Strict):
    """gateway.yaml ``server``: what one client may make the gateway hold or compute. Each
    bound is enforced before the work it protects (docs/configuration.md#server)."""

    # The request line and headers; more gets 431 before anything of the request is parsed.
    max_header_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 32 * 1024
    # From the connection (or the previous answer) to the end of the head; then 408 and cut.
    head_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    # From the end of the head to the end of the body; then 408 request.body_timeout and cut.
    body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    max_json_depth: Annotated[int, Field(ge=4, le=ENCODER_MAX_DEPTH)] = 64
    max_messages: Annotated[int, Field(ge=1)] = 2000
    max_parts: Annotated[int, Field(ge=1)] = 4000
    max_tools: Annotated[int, Field(ge=1)] = 256
    max_string_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    # CPU time the data boundary may spend scanning one request's text (or one answer's);
    # past it, 413 boundary.too_costly (502 boundary.answer_too_costly for an answer).
    max_scan_cpu_s: Annotated[float, Field(gt=0, le=3600)] = 0.75


class UpstreamConfig(_Strict):
    """gateway.yaml ``upstream``: what one provider answer may make the gateway hold or
    keep open. The policy's ``timeout_s`` bounds the wait for an answer's head; a stream
    then runs at most ``stream_timeout_s`` in all and ``idle_timeout_s`` between chunks."""

    max_answer_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024
    max_event_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    stream_timeout_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class GatewayConfig(_Strict):
    """The validated ``gateway.yaml``; relative paths are resolved against its folder."""

    listen: ListenConfig = ListenConfig()
    policies_dir: str = "policies"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    providers: dict[str, ProviderConfig]
    models: dict[str, ModelConfig]
    auth: AuthConfig = AuthConfig()
    nlp: NlpConfig | None = None
    stores: StoresConfig = StoresConfig()
    vault: VaultConfig = VaultConfig()
    audit: AuditConfig = AuditConfig()
    breaker: BreakerConfig = BreakerConfig()
    limits: LimitsConfig = LimitsConfig()
    server: ServerConfig = ServerConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    review: ReviewConfig = ReviewConfig()
    console: ConsoleConfig = ConsoleConfig()
    observe: ObserveConfig = ObserveConfig()
    base_dir: Annotated[Path, Field(exclude=True)] = Path(".")

    @model_validator(mode="after")
    def _models_name_known_providers(self) -> GatewayConfig:
        for name, model in self.models.items():
            if model.provider not in self.providers:
                known = ", ".join(sorted(self.providers))
                raise ValueError(
                    f"model '{name}' names unknown provider '{model.provider}' (known: {known})"
                )
        return self

    def path(self, value: str) -> Path:
        """``value`` resolved against the folder of the config file."""
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; raise KeyError naming an unset VAR.

    >>> interpolate("${HOST:-localhost}:${PORT}", {"PORT": "80"})
    'localhost:80'
    """

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _VAR.sub(sub, value)


def load_config(path: Path, env: dict[str, str] | None = None) -> GatewayConfig:
    """Read, interpolate and validate ``gateway.yaml``; raise ConfigError listing every problem."""
    environ = dict(os.environ) if env is None else env
    problems: list[Problem] = []

    def walk(node: Any, loc: tuple[int | str, ...], doc: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*loc, k), doc) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*loc, i), doc) for i, v in enumerate(node)]
        if isinstance(node, str):
            try:
                return interpolate(node, environ)
            except KeyError as exc:
                problems.append(
                    Problem(str(path), line_of(doc, loc), f"environment variable {exc} is not set")
                )
        return node

    def transform(doc: Any) -> Any:
        data = walk(doc, (), doc)
        if problems:
            raise ConfigError(problems)
        if isinstance(data, dict):
            data["base_dir"] = path.resolve().parent
        return data

    config, _ = load_model(path, GatewayConfig, transform)
    return config
