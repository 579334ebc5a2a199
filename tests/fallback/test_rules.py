"""The quality section at load (file:line problems, the schema in the version) and the refusal
phrase set, parametrized over answers and look-alikes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.loader import load_policies
from gateway.quality.refusal import refusal_share
from gateway.yamlsource import ConfigError

POLICY = """workflow: w
owner: o
access: {roles: [r], models: [m]}
quality:
  json_schema: QUALITY_SCHEMA
  must_match: ['PATTERN']
"""


def _load(folder: Path, schema: str = "s.json", pattern: str = "ok") -> str:
    (folder / "w.yaml").write_text(
        POLICY.replace("QUALITY_SCHEMA", schema).replace("PATTERN", pattern)
    )
    return load_policies(folder, ["m"])["w"].version


@pytest.mark.parametrize(
    ("schema_file", "content", "pattern", "message"),
    [
        ("s.json", None, "ok", "w.yaml:5: quality.json_schema: cannot read 's.json'"),
        ("s.json", "{not json", "ok", "w.yaml:5: quality.json_schema: 's.json' is not JSON"),
        (
            "s.json",
            '{"type": "objectx"}',
            "ok",
            "w.yaml:5: quality.json_schema: 's.json' is not a valid JSON Schema",
        ),
        ("s.json", '{"$ref": "https://example.com/s.json"}', "ok", "only local $ref"),
        (
            "s.json",
            '{"$schema": "https://json-schema.org/draft/2020-12/schema"}',
            "ok",
            "drafts 4, 6 and 7",
        ),
        (
            "../s.json",
            "{}",
            "ok",
            "w.yaml:5: quality.json_schema: '../s.json' is outside the policies folder",
        ),
        (
            "s.json",
            "{}",
            "(unclosed",
            "w.yaml:6: quality.must_match[0]: missing ), unterminated subpattern",
        ),
    ],
)
def test_problems_at_their_line(
    tmp_path: Path, schema_file: str, content: str | None, pattern: str, message: str
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    if content is not None:
        (folder / schema_file).resolve().write_text(content)
    with pytest.raises(ConfigError) as caught:
        _load(folder, schema_file, pattern)
    assert message in str(caught.value)


def test_schema_content_is_part_of_the_version(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"type": "object"}')
    first = _load(tmp_path)
    assert _load(tmp_path) == first
    (tmp_path / "s.json").write_text('{"type": "array"}')
    assert _load(tmp_path) != first


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("I'm sorry, but I can't help with that.", 1.0),
        (
            "I\u2019m unable to assist with this request. Is there anything else I can help with?",
            1.0,
        ),
        ("As an AI language model, I cannot provide legal advice.", 1.0),
        ('{"queue": "smb", "priority": 2}', 0.0),
        ("The customer can't log in; I can help reset the password.", 0.0),
        ("Sorry for the delay! Here is the summary you asked for.", 0.0),
        ("", 0.0),
    ],
)
def test_refusal_share(text: str, share: float) -> None:
    assert refusal_share(text) == share


def test_partial_refusal_is_a_share() -> None:
    share = refusal_share("I can't provide prices. The plan includes ten seats and support.")
    assert 0.3 < share < 0.6
