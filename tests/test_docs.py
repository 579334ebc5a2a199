"""The reference in docs/ keeps up with the code: every gateway.yaml key and every policy key
is documented, the reason-code table is the catalogue, and the annotated policy is valid."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.config import GatewayConfig
from gateway.errors import REASONS
from gateway.policy.models import Policy
from tests.policy.cliutil import REPO, run_cli

DOCS = REPO / "docs"


def _models_in(annotation: object) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models a field holds, each with the key suffix that reaches it: ``""`` for a model
    or an optional one, ``[]`` for a list of them, ``.<name>`` for a dict of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _models_in(args[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _models_in(arg)
    elif origin is list:
        yield from (("[]" + s, m) for s, m in _models_in(args[0]))
    elif origin is dict:
        yield from ((".<name>" + s, m) for s, m in _models_in(args[1]))


def dotted_keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every key a YAML file for ``model`` may hold, as ``a.b``, ``a[].b`` or ``a.<name>.b``."""
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, not by the file (GatewayConfig.base_dir)
            continue
        key = prefix + name
        yield key
        for suffix, sub in _models_in(field.annotation):
            yield from dotted_keys(sub, key + suffix + ".")


def _undocumented(model: type[BaseModel], page: Path) -> list[str]:
    text = page.read_text()
    return [k for k in dotted_keys(model) if f"`{k}`" not in text]


def test_the_walk_reaches_nested_and_imported_models() -> None:
    config = set(dotted_keys(GatewayConfig))
    assert {"auth.jwt.issuer", "providers.<name>.base_url", "limits.store_timeout_ms"} <= config
    assert "base_dir" not in config
    policy = set(dotted_keys(Policy))
    assert {"data.custom[].pattern", "limits.rate[].per", "quality.json_schema"} <= policy
    assert "fallback.on" in policy


def test_every_gateway_yaml_key_is_in_configuration_md() -> None:
    missing = _undocumented(GatewayConfig, DOCS / "configuration.md")
    assert not missing, f"gateway.yaml keys missing from docs/configuration.md: {missing}"


def test_every_policy_key_is_in_policy_md() -> None:
    missing = _undocumented(Policy, DOCS / "policy.md")
    assert not missing, f"policy keys missing from docs/policy.md: {missing}"


_ROW = re.compile(r"^\| `([a-z_]+\.[a-z_]+)` \| (\d{3}) \|", re.MULTILINE)


def test_reason_codes_md_is_the_catalogue() -> None:
    rows = _ROW.findall((DOCS / "reason-codes.md").read_text())
    documented = {code: int(status) for code, status in rows}
    assert len(rows) == len(documented), "a code has two rows in docs/reason-codes.md"
    catalogue = {r.code: r.status for r in REASONS.values()}
    to_add = "\n".join(
        f"| `{c}` | {s} | STEP | WHEN |" for c, s in catalogue.items() if documented.get(c) != s
    )
    assert documented == catalogue, f"docs/reason-codes.md differs; rows to add or fix:\n{to_add}"


def _first_policy(page: Path) -> tuple[str, str]:
    """The first ```yaml block of ``page``, a policy: its workflow name and its text."""
    block = re.search(r"^```yaml\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)
    assert block is not None, f"{page.name} has no ```yaml block"
    name = re.search(r"^workflow: ([a-z0-9_-]+)", block.group(1), re.MULTILINE)
    assert name is not None, f"the first yaml block of {page.name} is not a policy"
    return name.group(1), block.group(1)


def test_the_annotated_policy_holds_every_section() -> None:
    _, text = _first_policy(DOCS / "policy.md")
    top = set(re.findall(r"^([a-z_]+):", text, re.MULTILINE))
    assert top == set(Policy.model_fields)


@pytest.mark.parametrize("page", [DOCS / "policy.md", REPO / "README.md"], ids=lambda p: p.name)
def test_the_policy_shown_passes_validate(page: Path, tmp_path: Path) -> None:
    name, text = _first_policy(page)
    folder = tmp_path / "policies"
    (folder / "schemas").mkdir(parents=True)
    (folder / f"{name}.yaml").write_text(text)
    # The schema file the policy's quality section names.
    (folder / "schemas" / "lead_route.json").write_text(
        '{"type": "object", "required": ["queue"], "properties": {"queue": {"type": "string"}}}'
    )
    config = tmp_path / "gateway.yaml"
    config.write_text((REPO / "gateway.yaml").read_text())
    # --strict: a warning fails too; the config (the repo's own) is named after the command.
    result = run_cli("policy", "validate", "--strict", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok  {name}" in result.stdout


PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_between_pages_resolve(page: Path) -> None:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    for target, anchor in re.findall(r"\]\(([^)#:]*\.md)?(?:#([^)]*))?\)", text):
        linked = (page.parent / target).resolve() if target else page
        assert linked.exists(), f"{page.name} links to missing {target}"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name} links to missing {target}#{anchor}"
