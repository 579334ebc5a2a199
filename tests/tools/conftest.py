"""The lifecycle commands' gateway folder (tests/tools/lifecycle.py), on SQLite and on the
real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.tools.lifecycle import Folder, make_folder


@pytest.fixture(params=["sqlite", "postgres"])
def folder(
    request: pytest.FixtureRequest, tmp_path: Path, upstream: FakeUpstream
) -> Iterator[Folder]:
    yield from make_folder(tmp_path, upstream, request.param)


@pytest.fixture
def sqlite_folder(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Folder]:
    yield from make_folder(tmp_path, upstream, "sqlite")
