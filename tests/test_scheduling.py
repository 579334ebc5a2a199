"""``make test``'s one-at-a-time group (tests/support/scheduling.py) names tests that exist: a
renamed test would otherwise drop out of it unnoticed and run beside the others."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.scheduling import GROUP, ONE_AT_A_TIME, unit_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("entry", ONE_AT_A_TIME)
def test_each_entry_names_a_test_file_or_a_test_in_it(entry: str) -> None:
    file, _, name = entry.partition("::")
    source = (ROOT / file).read_text()
    assert Path(file).name.startswith("test_")
    if name:
        assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.M), entry


def test_a_test_goes_with_its_file_or_the_group() -> None:
    assert unit_of("tests/stores/test_fleet.py::test_x") == GROUP
    assert unit_of("tests/rollout/test_pause.py::test_y[redis]") == GROUP
    assert unit_of("tests/audit/test_durability.py::test_sink_and_spool_both_down[x]") == (
        "tests/audit/test_durability.py"
    )
    assert (
        unit_of("tests/test_upstream_failures.py::test_total_deadline_bounds_retries_and_fallbacks")
        == GROUP
    )
    assert unit_of("tests/stores/test_fleet_more.py::test_z") == "tests/stores/test_fleet_more.py"
