"""Candidate policies: ``W.candidate.yaml`` next to a live ``W.yaml``, evaluated in shadow.

A candidate goes through exactly the checks a live policy does (the loader's, whatever they
grow into): each file is validated as if it were ``W.yaml`` in a folder of its own, and its
problems are reported at the candidate's own file:line.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path

from gateway.boundary.ner import NerModel
from gateway.policy.compile import CompiledPolicy
from gateway.policy.loader import load_policies
from gateway.policy.models import DataPolicy
from gateway.yamlsource import ConfigError, Problem

__all__ = ["SUFFIX", "as_enforced", "as_shadow", "candidate_files", "load_candidates"]

SUFFIX = ".candidate.yaml"


def candidate_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def as_shadow(policy: CompiledPolicy, live: CompiledPolicy | None) -> CompiledPolicy:
    """The candidate as live traffic meets it: its data rules only decide and record, and
    when it detects exactly what the live policy detects it shares the live detector, so its
    verdict is read off the live findings instead of a second detection (shadow.py).

    The version stays the one of the file as written (its ``mode`` included).
    """
    data = policy.data
    if data is None:
        return policy
    if (
        live is not None
        and live.data is not None
        and _detects(live.data.source) == _detects(data.source)
    ):
        data = dataclasses.replace(data, detector=live.data.detector)
    return dataclasses.replace(policy, data=dataclasses.replace(data, shadow=True))


def as_enforced(shadow: CompiledPolicy) -> CompiledPolicy | None:
    """The candidate as a canary enforces it (its data rules act as its own ``mode`` says),
    from its shadow form; None when its ``rollout`` gives it no share of traffic. The shared
    detector stays shared: it finds exactly what the candidate's own would."""
    rollout = shadow.source.rollout
    if rollout is None or rollout.percent <= 0:
        return None
    data = shadow.data
    if data is None:
        return shadow
    acting = dataclasses.replace(data, shadow=shadow.source.mode == "shadow")
    return dataclasses.replace(shadow, data=acting)


def _detects(data: DataPolicy) -> tuple[object, ...]:
    """What decides the findings of a ``data`` section (not what is done with them)."""
    return (
        frozenset(e for e, action in data.entities.items() if action != "allow"),
        data.min_score,
        sorted(data.min_scores.items()),
        [(c.name, c.pattern, c.context, c.score) for c in data.custom if c.action != "allow"],
        data.deny_terms,
        data.allow_list,
    )


def load_candidates(
    directory: Path,
    live: Mapping[str, CompiledPolicy],
    known_models: Collection[str],
    ner: NerModel | None = None,
) -> dict[str, CompiledPolicy]:
    """Every ``W.candidate.yaml`` in ``directory``, validated; raises ConfigError with every
    problem. A candidate without a live ``W.yaml`` is a problem: there is nothing to compare."""
    problems: list[Problem] = []
    found: dict[str, CompiledPolicy] = {}
    for path in candidate_files(directory):
        workflow = path.name[: -len(SUFFIX)]
        try:
            loaded = _load_as(path, f"{workflow}.yaml", known_models, ner)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for name, policy in loaded.items():
            if name not in live:
                problems.append(
                    Problem(str(path), 1, f"candidate for '{name}', which has no live policy")
                )
            else:
                found[name] = dataclasses.replace(policy, path=str(path))
    if problems:
        raise ConfigError(problems)
    return found


def _load_as(
    path: Path, name: str, known_models: Collection[str], ner: NerModel | None
) -> dict[str, CompiledPolicy]:
    with tempfile.TemporaryDirectory(prefix="gateway-candidate-") as tmp:
        shutil.copyfile(path, Path(tmp) / name)
        alias = str(Path(tmp) / name)
        try:
            return load_policies(Path(tmp), known_models, ner)
        except ConfigError as exc:
            raise ConfigError(
                [
                    Problem(
                        str(path) if p.file == alias else p.file,
                        p.line,
                        p.message.replace(alias, str(path)),
                    )
                    for p in exc.problems
                ]
            ) from None
