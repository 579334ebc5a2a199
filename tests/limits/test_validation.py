"""A budget must be countable: every model the workflow can reach priced, and a ceiling on
output tokens. Both are policy-load problems at file:line, so a gateway never starts with a
budget it cannot keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ModelConfig
from gateway.policy import load_policies
from gateway.yamlsource import ConfigError

CATALOGUE = {
    "priced": ModelConfig(
        provider="p", upstream_model="a", usd_per_mtok_in=1.0, usd_per_mtok_out=2.0
    ),
    "free": ModelConfig(provider="p", upstream_model="b"),
    "half": ModelConfig(provider="p", upstream_model="c", usd_per_mtok_in=1.0),
}

POLICY = """\
workflow: spend
owner: ops@example.com
access:
  roles: [agent]
  models: [priced]
  max_output_tokens: 256
fallback:
  models: []
limits:
  budget:
    - {per: user, usd_per_day: 5}
"""


def load(tmp_path: Path, text: str) -> None:
    (tmp_path / "spend.yaml").write_text(text)
    load_policies(tmp_path, CATALOGUE)


def test_priced_models_load(tmp_path: Path) -> None:
    load(tmp_path, POLICY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            POLICY.replace("models: [priced]", "models: [priced, free]"),
            "spend.yaml:10: limits.budget: model(s) free can be reached but have no "
            "usd_per_mtok_in/usd_per_mtok_out",
        ),
        (  # reachable only as a fallback is reachable all the same
            POLICY.replace("models: []", "models: [half]"),
            "spend.yaml:10: limits.budget: model(s) half can be reached",
        ),
        (
            POLICY.replace("  max_output_tokens: 256\n", ""),
            "spend.yaml:9: limits.budget needs access.max_output_tokens",
        ),
    ],
)
def test_a_budget_it_cannot_keep_is_refused_at_load(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert expected in str(caught.value)


def test_unpriced_models_are_fine_without_a_budget(tmp_path: Path) -> None:
    text = POLICY.replace("models: [priced]", "models: [free]").replace(
        "  budget:\n    - {per: user, usd_per_day: 5}\n",
        "  rate:\n    - {per: user, requests_per_minute: 5}\n",
    )
    load(tmp_path, text)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ("  rate:\n    - {per: user}\n", "a rate rule needs requests_per_minute"),
        ("  budget:\n    - {per: team}\n", "a budget needs usd_per_day or usd_per_month"),
        ("  rate:\n    - {per: tenant, requests_per_minute: 1}\n", "limits.rate.0.per: Input"),
        ("  on_store_error: ignore\n", "limits.on_store_error: Input should be 'block'"),
        ("  rates: []\n", "limits.rates: unknown key; did you mean 'rate'?"),
    ],
)
def test_bad_sections_are_refused(tmp_path: Path, limits: str, expected: str) -> None:
    text = POLICY.split("limits:\n")[0] + "limits:\n" + limits
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert expected in str(caught.value)
