"""Many instances under faults, for longer than the test suite can wait (not run by
``make test``): four ``gateway serve`` processes on a private Redis Cluster (three primaries
with a replica each) and a private PostgreSQL (audit, ``durability: sync``), mixed traffic
from SDK clients, and during the run one instance SIGKILLed, the limits' Redis primary failed
over and PostgreSQL restarted. The scenario and its checks are tests/stores/fleet.py's, the
same the bounded test (tests/stores/test_fleet.py) runs for about a minute.

    python bench/soak.py                   # 300 s of traffic, faults at 20, 40 and 60 %
    python bench/soak.py --seconds 60 --clients 12

Prints the figures (audit records/s, records per commit and mean commit latency with four
instances on one PostgreSQL chain, client latency, RSS of each surviving instance before and
after) beside the baseline of the same run: the same traffic for the first 20 % of the run,
before any fault. Exits 1 naming what did not hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests/

from tests.fakes.upstream import FakeUpstream
from tests.stores.cluster import PrivateCluster
from tests.stores.fleet import Fleet, problems, report

RSS_GROWTH_MB = 80


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    faults = {
        "kill": args.seconds * 0.2,
        "failover": args.seconds * 0.4,
        "pg_restart": args.seconds * 0.6,
    }
    cluster = PrivateCluster()
    with FakeUpstream() as upstream, tempfile.TemporaryDirectory(prefix="soak-") as root:
        try:
            cluster.start()
            fleet = Fleet(Path(root), cluster, upstream)
            fleet.start()
            try:
                fleet.run(args.seconds, args.clients, faults, until=fleet.limits_used_up)
                figures = report(fleet)
                found = problems(fleet, figures, RSS_GROWTH_MB)
            finally:
                fleet.stop()
        finally:
            cluster.destroy()
    print(json.dumps(figures, indent=1, default=str))
    for problem in found:
        print(f"FAILED: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
