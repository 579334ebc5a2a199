"""The console's pages with a large audit trail: the overview and explorer pages rendered by a
running gateway (a separate process), with N records in SQLite and in PostgreSQL.

    python bench/console.py                  # 1,000,000 records per store (minutes to write)
    python bench/console.py --records 100000 --renders 30

The records are synthetic (five workflows, a realistic mix of decisions, reasons and entities)
spread over the last 24 hours, written through the audit sinks themselves (chained as the
gateway chains them). The overview's first render starts rolling the settled five-minute
buckets up in the background and shows what is rolled up so far; the bench waits until the
roll-up has caught up (reported apart), then measures renders that read the rollups and scan
only the open buckets.

On PostgreSQL the filtered explorer is measured again on the schema as migration 0002 left it
(the index of 0003 dropped: the baseline), then after ``gateway migrate`` builds it again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from overhead import BenchError, Processes, _free_port, _gateway_cli, _wait_ready, percentile

from gateway.audit.chain import Chain
from gateway.audit.postgres import PostgresSink
from gateway.audit.record import AuditRecord
from gateway.audit.sink import AuditStore
from gateway.audit.sqlite import SqliteSink
from gateway.auth.keys import create_key

PG = "postgresql://postgres@127.0.0.1:5432/test"
WORKFLOWS = ("lead_triage", "support_bot", "claims", "hr_helper", "code_review")
REASONS = [
    [],
    [],
    [],
    ["boundary.masked"],
    ["boundary.blocked_entity"],
    ["upstream.timeout", "fallback.review"],
    ["quality.schema_invalid"],
]


def _record(n: int, now: float, span: float) -> AuditRecord:
    reasons = random.choice(REASONS)
    blocked = "boundary.blocked_entity" in reasons
    decision = "deny" if blocked else "masked" if reasons == ["boundary.masked"] else "allow"
    entities = {"request": {"mask": {"EMAIL_ADDRESS": 1}}} if reasons else {}
    return AuditRecord(
        request_id=f"bench{n:09d}",
        time=now - span + span * n / ARGS.records,
        endpoint="chat",
        workflow=WORKFLOWS[n % len(WORKFLOWS)],
        policy_version="sha256:bench",
        mode="enforce",
        subject=f"user{n % 97}",
        roles=["bench"],
        team=None,
        key_id="k",
        auth_method="key",
        model_requested="gpt-4o-mini",
        model_used="gpt-4o-mini",
        fallback_used=False,
        decision=decision,
        reasons=reasons,
        status=403 if blocked else 200,
        streamed=False,
        stream_end=None,
        upstream_status=200,
        attempts=1,
        retries=0,
        latency_ms=random.lognormvariate(5, 0.6),
        upstream_ms=100.0,
        tokens_in=40,
        tokens_out=80,
        reserved_usd=None,
        actual_usd=0.0001,
        upstream_store=True,
        entities=entities,
        fallback="message" if "fallback.review" in reasons else None,
    )


async def _fill(store: AuditStore, records: int) -> float:
    started = time.perf_counter()
    now, batch = time.time(), 5000
    for first in range(0, records, batch):
        await store.write(
            [_record(n, now, 86_400) for n in range(first, min(first + batch, records))]
        )
    await store.close()
    return time.perf_counter() - started


def _timed(client: httpx.Client, path: str, renders: int) -> list[float]:
    out = []
    for _ in range(renders):
        started = time.perf_counter()
        page = client.get(path)
        out.append(time.perf_counter() - started)
        if page.status_code != 200:
            raise BenchError(f"{path}: {page.status_code}")
    return out


_FILTERED = "explorer?workflow=claims&reason=boundary.blocked_entity"


def _measure(
    name: str, work: Path, extra: str, env: dict[str, str], schema: str | None = None
) -> list[str]:
    config = work / "gateway.yaml"
    (work / "policies").mkdir(exist_ok=True)
    config.write_text(
        "listen: {host: 127.0.0.1, port: 0}\npolicies_dir: policies\n"
        "providers: {demo: {type: mock}}\n"
        "models: {gpt-4o-mini: {provider: demo, upstream_model: m}}\n"
        "auth: {api_keys_file: keys.yaml}\n" + extra
    )
    for workflow in WORKFLOWS:
        (work / "policies" / f"{workflow}.yaml").write_text(
            f"workflow: {workflow}\nowner: bench@example.com\n"
            "access: {roles: [bench], models: [gpt-4o-mini]}\n"
        )
    admin = create_key(work / "keys.yaml", "bench-admin", ["admin"])[0]
    port = _free_port()
    procs = Processes(work)
    rows = []
    try:
        procs.start(
            name,
            [*_gateway_cli(config), *f"serve --port {port} --log-level warning".split()],
            set(),
            env,
        )
        _wait_ready(procs, name, port, "/healthz", 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/console/", timeout=600) as c:
            if c.post("login", data={"credential": admin}).status_code != 303:
                raise BenchError("sign-in failed")
            started = time.perf_counter()
            first = _timed(c, "overview?hours=24", 1)[0]
            while "still being rolled up" in c.get("overview?hours=24").text:
                time.sleep(1)  # the background roll-up of the 48 h the page reads
            caught_up = time.perf_counter() - started
            pages = {
                "overview, 24 h": "overview?hours=24",
                "explorer, first page": "explorer",
                "explorer, workflow + reason": _FILTERED,
                "explorer, a page deep (after=seq)": f"explorer?after={ARGS.records // 2}",
            }
            rows.append(
                f"| {name} | overview, first render (starts the roll-up) | {first * 1e3:,.0f} ms "
                "| | |"
            )
            rows.append(f"| {name} | background roll-up caught up | {caught_up:,.0f} s | | |")
            for label, path in pages.items():
                t = _timed(c, path, ARGS.renders)
                rows.append(
                    f"| {name} | {label} | {percentile(t, 0.5) * 1e3:.1f} ms | "
                    f"**{percentile(t, 0.95) * 1e3:.1f} ms** | {ARGS.renders} |"
                )
            if schema is not None:
                rows += _without_0003(c, schema, config, env)
    finally:
        procs.stop()
    return rows


def _without_0003(c: httpx.Client, schema: str, config: Path, env: dict[str, str]) -> list[str]:
    """The filtered explorer on the schema as 0002 left it (the baseline), then again once
    `gateway migrate` has applied 0003 to the full table (and how long its build took)."""
    asyncio.run(_pg_run(
        f"DROP INDEX {schema}.{schema}_records_workflow_seq",
        f"DELETE FROM {schema}.schema_migrations WHERE version = 3",
    ))  # fmt: skip
    before = _timed(c, _FILTERED, ARGS.renders)
    started = time.perf_counter()
    done = subprocess.run(
        [*_gateway_cli(config), "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"gateway migrate: {done.stderr}")
    built = time.perf_counter() - started
    after = _timed(c, _FILTERED, ARGS.renders)
    return [
        f"| postgres | explorer, workflow + reason, schema at 0002 (baseline) | "
        f"{percentile(before, 0.5) * 1e3:.1f} ms | **{percentile(before, 0.95) * 1e3:.1f} ms** "
        f"| {ARGS.renders} |",
        f"| postgres | `gateway migrate` applies 0003 (workflow, seq) | {built:.1f} s | | |",
        f"| postgres | explorer, workflow + reason, with 0003 | {percentile(after, 0.5) * 1e3:.1f} "
        f"ms | **{percentile(after, 0.95) * 1e3:.1f} ms** | {ARGS.renders} |",
    ]


async def _pg_run(*statements: str) -> None:
    db = await asyncpg.connect(PG)
    try:
        for statement in statements:
            await db.execute(statement)
    finally:
        await db.close()


async def _pg_schema(name: str, drop: bool) -> None:
    db = await asyncpg.connect(PG)
    try:
        if drop:
            await db.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            await db.execute(f"DROP SCHEMA IF EXISTS {name}_review CASCADE")
    finally:
        await db.close()


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = [
        f"{ARGS.records:,} audit records over 24 h, {ARGS.renders} renders a page after the first",
        "| store | page | p50 | p95 | renders |",
        "| --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        if not ARGS.no_sqlite:
            work = Path(tmp) / "sqlite"
            work.mkdir()
            took = asyncio.run(_fill(SqliteSink(work / "audit.db", Chain(None)), ARGS.records))
            print(f"sqlite: {ARGS.records:,} records written in {took:.0f} s", file=sys.stderr)
            extra = "audit: {sqlite_path: audit.db, purge_interval_s: 0}\n"
            out += _measure("sqlite", work, extra, env)
        if not ARGS.no_postgres:
            schema = f"bench_console_{secrets.token_hex(4)}"
            work = Path(tmp) / "postgres"
            work.mkdir()
            try:
                took = asyncio.run(_fill(PostgresSink(PG, schema, Chain(None)), ARGS.records))
                print(
                    f"postgres: {ARGS.records:,} records written in {took:.0f} s", file=sys.stderr
                )
                extra = (
                    f"audit: {{pg_schema: {schema}, purge_interval_s: 0}}\n"
                    f"review: {{pg_schema: {schema}_review}}\nstores: {{audit_url: '{PG}'}}\n"
                )
                out += _measure("postgres", work, extra, env, schema)
            finally:
                asyncio.run(_pg_schema(schema, drop=True))
    print("\n".join(out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--renders", type=int, default=30)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    ARGS = parser.parse_args()
    random.seed(7)
    main()
