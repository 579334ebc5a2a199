"""A validated policy compiled once into what the request path reads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.boundary.ner import NerModel
from gateway.boundary.policy import BoundaryPolicy, compile_data
from gateway.limits.plan import LimitPlan, compile_limits
from gateway.policy.models import AccessPolicy, Policy
from gateway.quality.rules import QualityRules, compile_quality

__all__ = ["AccessRules", "CompiledPolicy", "compile_access", "compile_policy", "policy_version"]


@dataclass(frozen=True, slots=True)
class AccessRules:
    """The ``access`` section as sets, read by gateway/access.py on every request."""

    roles: frozenset[str]
    subjects: frozenset[str] | None
    teams: frozenset[str] | None
    models: tuple[str, ...]  # in the policy's order, for model lists
    model_set: frozenset[str]
    endpoints: frozenset[str]
    max_output_tokens: int | None
    clamp: bool
    allow_tools: bool
    allow_streaming: bool
    tools: frozenset[str] | None = None  # None: any tool name


def compile_access(access: AccessPolicy) -> AccessRules:
    return AccessRules(
        roles=frozenset(access.roles),
        subjects=frozenset(access.subjects) if access.subjects is not None else None,
        teams=frozenset(access.teams) if access.teams is not None else None,
        models=tuple(access.models),
        model_set=frozenset(access.models),
        endpoints=frozenset(access.endpoints),
        max_output_tokens=access.max_output_tokens,
        clamp=access.on_exceed == "clamp",
        allow_tools=access.allow_tools,
        allow_streaming=access.allow_streaming,
        tools=frozenset(access.tools) if access.tools is not None else None,
    )


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """The runtime form of a policy: sets for membership, the version for every record."""

    source: Policy
    version: str
    path: str
    access: AccessRules
    fallback_models: tuple[str, ...]
    data: BoundaryPolicy | None = None  # None: no data section, nothing is inspected
    quality: QualityRules | None = None  # None: no quality section, nothing is checked
    limits: LimitPlan | None = None  # None: no rate limits or budgets

    @property
    def name(self) -> str:
        return self.source.workflow

    def model_chain(self, requested: str) -> tuple[str, ...]:
        """The requested model, then the fallbacks in order, each once."""
        if not self.fallback_models:  # most policies: no dict and tuple per request
            return (requested,)
        return tuple(dict.fromkeys((requested, *self.fallback_models)))


def policy_version(policy: Policy, *files: str) -> str:
    """A content hash: the same rules give the same version whatever the formatting;
    ``files`` are the digests of files the policy names (a JSON schema), so editing one is a
    new version too."""
    canonical = orjson.dumps(policy.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(canonical)
    for file in files:
        digest.update(file.encode())
    return "sha256:" + digest.hexdigest()[:16]


def compile_policy(policy: Policy, path: str, ner: NerModel | None = None) -> CompiledPolicy:
    """Build the runtime policy, the detector included; ``ner`` serves PERSON/LOCATION."""
    data = policy.data
    quality = compile_quality(policy.quality, Path(path).parent) if policy.quality else None
    schema = quality.schema_digest if quality is not None else None
    return CompiledPolicy(
        source=policy,
        version=policy_version(policy, *([schema] if schema else [])),
        path=path,
        access=compile_access(policy.access),
        fallback_models=tuple(policy.fallback.models),
        quality=quality,
        data=compile_data(data, ner, policy.mode == "shadow") if data is not None else None,
        limits=compile_limits(policy.limits) if policy.limits is not None else None,
    )
