"""How ``make test`` spreads the suite over two pytest-xdist workers (``-n 2 --dist loadgroup``,
whose scheduler tests/conftest.py replaces with this one): whole files, so a module's fixtures
start once per run; and one group, ``ONE_AT_A_TIME``, run one after the other on one worker and
started first (it is the longest unit). The other worker meanwhile runs ordinary tests, which
use about a core (one process, the gateway a thread in it).

The group holds the tests that take the machine (several gateway processes under traffic) and
those that bound a wall-clock time tightly, so the second never runs beside the first. It is a
list of test ids here, not ``xdist_group`` marks: pytest-xdist 3.8 groups by a suffix it writes
into the test's id, which pytest 9.2 no longer lets it change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest
    from xdist.remote import Producer
    from xdist.scheduler import LoadScopeScheduling
    from xdist.workermanage import WorkerController

__all__ = ["GROUP", "ONE_AT_A_TIME", "files_and_groups", "unit_of"]

GROUP = "one_at_a_time"
# Test ids, or their beginnings (a file, a test without its parameters).
ONE_AT_A_TIME = (
    # They take the machine.
    "tests/stores/test_fleet.py",  # four gateway processes, PostgreSQL, a Redis Cluster, faults
    "tests/stores/test_cluster.py",  # two gateway processes under many clients, a failover
    "tests/rollout/test_abort.py",  # 35 s of traffic, and an abort asserted within its window
    "tests/audit/test_durability.py::test_kill_9_under_load_loses_no_completed_response",
    "tests/audit/test_durability.py::test_postgres_stopped_mid_load_loses_nothing",
    "tests/deploy/test_compose.py::test_the_compose_topology_serves_through_both_replicas",
    # They bound a time tightly.
    "tests/fallback/test_deadline.py",  # to 0.4 s
    "tests/rollout/test_pause.py",  # a pause seen by another instance within a second
    "tests/stores/test_freeze.py",  # each request's time under a frozen Redis
    "tests/hardening/test_fairness.py",  # a small request answered while bodies are scanned
    "tests/test_upstream_failures.py::test_total_deadline_bounds_retries_and_fallbacks",
    "tests/auth/test_jwks_url.py::test_a_flood_of_unknown_kids_fetches_once_and_does_not_stall_others",
    "tests/audit/test_multiwriter.py",  # a lock handed on in 15 ms, the loop never held 0.2 s
)


def unit_of(nodeid: str) -> str:
    """The work unit a test runs in: the group, or its file."""
    for start in ONE_AT_A_TIME:
        if nodeid == start or nodeid.startswith((f"{start}::", f"{start}[")):
            return GROUP
    return nodeid.split("::", 1)[0]


def files_and_groups(config: pytest.Config, log: Producer) -> LoadScopeScheduling:
    """The scheduler (pytest-xdist is imported only when it runs the suite)."""
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: WorkerController) -> None:
            if GROUP in self.workqueue:
                self.workqueue.move_to_end(GROUP, last=False)
            super()._assign_work_unit(node)

    return FilesAndGroup(config, log)
