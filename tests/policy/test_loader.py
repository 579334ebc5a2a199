"""Policy and config files: every problem reported at once, at file:line, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import interpolate, load_config
from gateway.policy import load_policies
from gateway.policy.compile import policy_version
from gateway.yamlsource import ConfigError
from tests.policy.cliutil import run_cli

MODELS = {"gpt-test", "claude-test"}

GOOD = """\
workflow: triage
owner: ops@example.com
access:
  roles: [agent]
  models: [gpt-test]
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("access:", "acess:"),
            [
                "triage.yaml:3: acess: unknown key; did you mean 'access'?",
                "triage.yaml:1: access: Field required",
            ],
        ),
        (
            GOOD + "upstream:\n  timeout_s: 5\n  retrys: 2\n",
            ["triage.yaml:8: upstream.retrys: unknown key; did you mean 'retries'?"],
        ),
        (
            GOOD.replace("[gpt-test]", "[gpt-test, gpt-5]"),
            ["triage.yaml:5: access.models: unknown model 'gpt-5'"],
        ),
        (
            GOOD + "fallback:\n  models: [nope]\n",
            ["triage.yaml:7: fallback.models: unknown model 'nope'"],
        ),
        (
            GOOD + "upstream:\n  fallback_models: [gpt-test]\n",
            ["triage.yaml:6: upstream: Value error, fallback_models moved to the fallback section"],
        ),
        (
            GOOD + "mode: audit\n",
            ["triage.yaml:6: mode: Input should be 'enforce', 'shadow' or 'paused'"],
        ),
        (GOOD.replace("roles: [agent]", "roles: []"), ["triage.yaml:4: access.roles:"]),
        (GOOD.replace("owner: ops@example.com\n", ""), ["triage.yaml:1: owner: Field required"]),
        (
            GOOD.replace("workflow: triage", "workflow: other"),
            ["triage.yaml:1: workflow 'other' must be defined in a file named 'other.yaml'"],
        ),
        ("workflow: triage\n  owner: [", ["triage.yaml:2: invalid YAML"]),
    ],
)
def test_problems_name_file_and_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    write(tmp_path, "triage.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_policies(tmp_path, MODELS)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message


def test_every_file_and_problem_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workflow: a\nowner: x\naccess: {roles: [r], models: [bad1]}\n")
    write(tmp_path, "b.yaml", "workflow: b\nownr: x\naccess: {roles: [r], models: [bad2]}\n")
    write(tmp_path, "triage.yaml", GOOD)
    with pytest.raises(ConfigError) as caught:
        load_policies(tmp_path, MODELS)
    lines = str(caught.value).splitlines()
    assert any("a.yaml:3" in line and "bad1" in line for line in lines)
    assert any("b.yaml:2" in line and "did you mean 'owner'" in line for line in lines)
    assert any("b.yaml:1" in line and "owner: Field required" in line for line in lines)


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    write(tmp_path, "triage.yaml", GOOD)
    first = load_policies(tmp_path, MODELS)["triage"]
    write(tmp_path, "triage.yaml", "# reformatted\n" + GOOD.replace("[agent]", "\n    - agent"))
    same = load_policies(tmp_path, MODELS)["triage"]
    write(tmp_path, "triage.yaml", GOOD.replace("[agent]", "[agent, ops]"))
    changed = load_policies(tmp_path, MODELS)["triage"]
    assert first.version == same.version == policy_version(first.source)
    assert changed.version != first.version


def test_candidates_are_not_live_policies(tmp_path: Path) -> None:
    write(tmp_path, "triage.yaml", GOOD)
    write(tmp_path, "triage.candidate.yaml", GOOD.replace("[agent]", "[other]"))
    assert list(load_policies(tmp_path, MODELS)) == ["triage"]


def test_interpolation() -> None:
    env = {"HOST": "gw", "EMPTY": ""}
    assert interpolate("${HOST}:${PORT:-8080}", env) == "gw:8080"
    assert interpolate("${EMPTY:-x}", env) == ""
    with pytest.raises(KeyError):
        interpolate("${NOPE}", env)


def test_config_reports_unset_variables_and_unknown_providers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "gateway.yaml",
        (
            "providers:\n"
            "  openai: {type: openai, base_url: '${BASE}', api_key_env: K}\n"
            "models:\n"
            "  m: {provider: openai, upstream_model: m}\n"
        ),
    )
    with pytest.raises(
        ConfigError, match=r"gateway.yaml:2: environment variable 'BASE' is not set"
    ):
        load_config(path, {})
    path.write_text(path.read_text().replace("provider: openai", "provider: opena"))
    with pytest.raises(ConfigError, match="unknown provider 'opena'"):
        load_config(path, {"BASE": "http://x"})
    path.write_text(path.read_text() + "listen: {hots: x}\n")
    with pytest.raises(
        ConfigError, match=r"gateway.yaml:5: listen.hots: unknown key; did you mean 'host'"
    ):
        load_config(path, {"BASE": "http://x"})


def test_sample_policies_validate() -> None:
    result = run_cli("policy", "validate", timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("lead_triage", "support_reply", "code_review"):
        assert f"ok  {name}" in result.stdout


def test_validate_exits_non_zero_with_lines(tmp_path: Path) -> None:
    write(tmp_path, "triage.yaml", GOOD.replace("models:", "modles:"))
    result = run_cli("policy", "validate", str(tmp_path), timeout=60)
    assert result.returncode == 1
    assert f"{tmp_path / 'triage.yaml'}:5: access.modles: unknown key; did you mean 'models'?" in (
        result.stderr
    )
