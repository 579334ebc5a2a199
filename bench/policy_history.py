"""What recording the policy history adds to a reload: the sample policies folder reloaded in
process with the history hook (the SQLite audit file) and without it, interleaved in one run.

    python bench/policy_history.py            # about 20 s
    python bench/policy_history.py --quick    # a smoke run

Reloads are off the request path (the poll and the swap run beside the event loop's other
work), so this is the cost of one reload, not of a request: reading every policy file's text
again, a fingerprint of the folder, and one idempotent insert of the versions (nothing new
after the first reload).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.audit.history import SqliteHistory, loaded_recorder  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.policy.reload import PolicyReloader, start_registry  # noqa: E402


async def _timed(reloader: PolicyReloader, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        result = await reloader.reload("bench")
        out.append((time.perf_counter() - start) * 1000)
        assert result.applied
    return out


async def main(rounds: int, per_round: int) -> None:
    config = load_config(ROOT / "gateway.yaml")
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        folder = Path(tmp) / "policies"
        shutil.copytree(ROOT / "policies", folder)
        registry = start_registry(folder, config.models, None)
        history = SqliteHistory(Path(tmp) / "audit.db")
        plain = PolicyReloader(registry, folder, config.models)
        recording = PolicyReloader(registry, folder, config.models, record=loaded_recorder(history))
        await recording.reload("first: the versions are new")
        without: list[float] = []
        with_history: list[float] = []
        for _ in range(rounds):
            without += await _timed(plain, per_round)
            with_history += await _timed(recording, per_round)
        stored = len(await history.versions("support_reply"))
        versions = [v for w in registry.all() for v in await history.versions(w)]
        inserts = []
        for _ in range(rounds * per_round):
            start = time.perf_counter()
            assert await history.record_versions(versions) == 0
            inserts.append((time.perf_counter() - start) * 1000)
    n = len(registry.all()) + len(registry.current.candidates)
    print(f"{n} policies, {len(without)} reloads each, interleaved ({stored} version kept)")
    print(f"{'':<26}{'p50 ms':>10}{'mean ms':>10}")
    for label, values in (("reload", without), ("reload + history", with_history)):
        print(f"{label:<26}{statistics.median(values):>10.2f}{statistics.fmean(values):>10.2f}")
    added = statistics.median(with_history) - statistics.median(without)
    print(f"history adds {added:.2f} ms at p50 per reload")
    print(
        f"of which the insert of {len(versions)} known versions: "
        f"{statistics.median(inserts):.2f} ms at p50"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(2 if args.quick else 10, 5 if args.quick else 20))
