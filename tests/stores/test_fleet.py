"""Four gateway instances on a Redis Cluster and PostgreSQL under mixed traffic, while one
instance is SIGKILLed, the limits' Redis primary fails over and PostgreSQL restarts
(tests/stores/fleet.py has the scenario and its checks; bench/soak.py runs it for longer).
About a minute of traffic.

Afterwards: no more admitted than the limits (and the limits were reached), spend within the
budget and equal to what the answered calls cost, exactly one audit record per answered
request and none twice, ``gateway audit verify`` passes, nothing reserved beyond what the
killed instance and the failover window held, the RSS of each surviving instance within
80 MB of its warmed-up size.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.stores.cluster import PrivateCluster
from tests.stores.fleet import Fleet, problems, report

RSS_GROWTH_MB = 80


@pytest.fixture
def fleet(
    redis_cluster: PrivateCluster, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), redis_cluster, upstream)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


def test_four_instances_under_faults_lose_and_overspend_nothing(fleet: Fleet) -> None:
    faults = {"kill": 5.0, "failover": 10.0, "pg_restart": 16.0}
    fleet.run(seconds=22, clients=8, faults=faults, until=fleet.limits_used_up)
    figures = report(fleet)
    print(figures)
    assert problems(fleet, figures, RSS_GROWTH_MB) == [], figures
