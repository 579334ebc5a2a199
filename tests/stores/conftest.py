"""A private Redis Cluster for the whole session: started once by the first test that asks
for it (here or in tests/limits: one cluster for both), torn down at the end. A test that
fails a primary over leaves it whole again (PrivateCluster.fail_over restarts the killed node
as a replica)."""

from __future__ import annotations

import shutil

import pytest

from tests.stores.cluster import PrivateCluster, shared_cluster


@pytest.fixture(scope="session")
def redis_cluster() -> PrivateCluster:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed (.ci/run installs them)")
    return shared_cluster()
