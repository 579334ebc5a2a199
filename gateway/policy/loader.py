"""Load every policy in a folder, reporting every problem in every file at once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from gateway.boundary.ner import NerModel
from gateway.boundary.policy import data_problems
from gateway.limits.spec import budget_problems
from gateway.policy.compile import CompiledPolicy, compile_policy
from gateway.policy.models import Policy
from gateway.quality.rules import quality_problems
from gateway.yamlsource import ConfigError, Problem, line_of, load_model

__all__ = ["load_policies", "policy_files"]


def policy_files(directory: Path) -> list[Path]:
    """Policy files of a folder; ``*.candidate.yaml`` and sub-folders (tests) are not policies."""
    return sorted(
        p
        for p in (*directory.glob("*.yaml"), *directory.glob("*.yml"))
        if ".candidate." not in p.name
    )


def load_policies(
    directory: Path, known_models: Collection[str], ner: NerModel | None = None
) -> dict[str, CompiledPolicy]:
    """Validate every policy file in ``directory`` against the model catalogue.

    ``ner`` is the gateway's NER model, if configured: without it a policy naming PERSON or
    LOCATION is a problem.

    Raises ConfigError with every problem of every file, each at its file:line.
    """
    if not directory.is_dir():
        raise ConfigError([Problem(str(directory), 0, "policies folder does not exist")])
    problems: list[Problem] = []
    policies: dict[str, CompiledPolicy] = {}
    for path in policy_files(directory):
        try:
            policy, doc = load_model(path, Policy)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        found = _lint(policy, doc, str(path), known_models)
        if policy.data is not None:
            found += [
                Problem(str(path), line_of(doc, loc), message)
                for loc, message in data_problems(policy.data, ner is not None)
            ]
        if policy.quality is not None:
            found += [
                Problem(str(path), line_of(doc, loc), message)
                for loc, message in quality_problems(policy.quality, path.parent)
            ]
        if policy.workflow in policies:
            other = policies[policy.workflow].path
            found.append(
                Problem(
                    str(path),
                    line_of(doc, ("workflow",)),
                    f"workflow '{policy.workflow}' is also defined in {other}",
                )
            )
        if isinstance(known_models, Mapping):  # the catalogue, with prices
            reachable = (*policy.access.models, *policy.fallback.models)
            ceiling = policy.access.max_output_tokens
            found += [
                Problem(str(path), line_of(doc, loc), message)
                for loc, message in budget_problems(policy.limits, reachable, known_models, ceiling)
            ]
        problems.extend(found)
        if not found:
            policies[policy.workflow] = compile_policy(policy, str(path), ner)
    if problems:
        raise ConfigError(problems)
    return policies


def _lint(policy: Policy, doc: object, path: str, known_models: Collection[str]) -> list[Problem]:
    problems: list[Problem] = []
    known = ", ".join(sorted(known_models))
    for section, names in (
        ("access", policy.access.models),
        ("fallback", policy.fallback.models),
    ):
        field = "models"
        for i, name in enumerate(names):
            if name not in known_models:
                problems.append(
                    Problem(
                        path,
                        line_of(doc, (section, field, i)),
                        f"{section}.{field}: unknown model '{name}' (catalogue: {known})",
                    )
                )
    stem = Path(path).stem
    if stem != policy.workflow:
        problems.append(
            Problem(
                path,
                line_of(doc, ("workflow",)),
                f"workflow '{policy.workflow}' must be defined in a file named "
                f"'{policy.workflow}.yaml', not '{Path(path).name}'",
            )
        )
    if policy.retention.content == "masked" and policy.data is None:
        problems.append(
            Problem(
                path,
                line_of(doc, ("retention", "content")),
                "retention.content: masked needs a data section: without one the text kept "
                "would be the raw text",
            )
        )
    return problems
