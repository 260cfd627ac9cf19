"""CPU per message of the inbound drain, in-process: what the worker and PostgreSQL spend on it.

`bench/ingest.py` measures the whole path over HTTP with real servers, and its rates move with
whatever else the machine runs. This one times the worker's half alone, as CPU time, which a busy
machine disturbs much less: events are stored with `inbound_event_store` (as the webhook does), then
`inbound_events_drain()` runs here, and the CPU of this process and of its PostgreSQL backend
(`/proc/<pid>/stat`) is divided by the messages drained. Statements per message are counted too.

Messages are the commonest kind: returning customers writing on their open ticket, a sender each
(`--senders` of them, created and given a ticket first), in rounds of `--batch` events.

    .venv/bin/python bench/drain.py                       # 40 rounds of 50
    .venv/bin/python bench/drain.py --one-by-one          # each event in its own transaction, as before

Scratch database bench_drain (created, migrated and dropped here), Redis DB 13.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

DB = "bench_drain"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(*, rounds: int, batch: int, senders: int, one_by_one: bool) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from channels_inbound.models import Channel
    from channels_inbound.services import _kick_clear, inbound_event_store, inbound_events_drain
    from omnicenter.celery import app
    from tickets.models import Team

    if one_by_one:  # the drain as it was before a batch's events shared a transaction
        from channels_inbound import services

        services._process_claimed_batch = lambda events: [services._process_claimed(event) for event in events]
    app.conf.task_always_eager = True  # the drain's kicks run nothing here: this process drains
    team = Team.objects.create(name="Bench")
    channel = Channel.objects.create(key="bench-drain", kind=Channel.Kind.API, name="Bench", default_team=team)

    def store(count: int, prefix: str) -> None:
        for i in range(count):
            sender = i % senders
            payload = {"id": f"{prefix}-{i}", "from": {"email": f"sender{sender}@example.net", "name": f"Sender {sender}"},
                       "text": " ".join(common.WORDS[(i * 7 + k) % len(common.WORDS)] for k in range(20))}
            inbound_event_store(channel=channel, external_id=payload["id"], payload=payload, enqueue=False)

    store(senders, "first")  # every sender has a customer and an open ticket from here on
    inbound_events_drain()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    python, postgres, statements = [], [], []
    for r in range(rounds):
        store(batch, f"r{r}")
        _kick_clear()
        c0, p0 = time.process_time(), _cpu_seconds(backend)
        with CaptureQueriesContext(connection) as queries:
            drained = inbound_events_drain()
        c1, p1 = time.process_time(), _cpu_seconds(backend)
        assert drained == batch, drained
        python.append((c1 - c0) * 1000 / batch)
        postgres.append((p1 - p0) * 1000 / batch)
        statements.append(len(queries) / batch)

    def summary(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 3), "mean": round(statistics.fmean(values), 3)}

    return {"python_cpu_ms": summary(python), "postgres_cpu_ms": summary(postgres),
            "statements": round(statistics.median(statistics.fmean([s]) for s in statements), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50, help="events stored before each drain")
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--one-by-one", action="store_true", help="each event in its own transaction (the old drain)")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="omnicenter-bench-drain-"))
    env = common.production_env(db_name=DB, var_dir=var_dir)
    common.db_recreate(DB)
    common.redis_flush()
    try:
        common.django_setup(env)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        load = os.getloadavg()
        result = run(rounds=args.rounds, batch=args.batch, senders=args.senders, one_by_one=args.one_by_one)
        import psycopg

        print(f"psycopg implementation: {psycopg.pq.__impl__}")
        print(f"drain{' (one by one)' if args.one_by_one else ''}, {args.rounds} rounds of {args.batch} messages "
              "(returning senders, open tickets), "
              f"load average {load[0]:.2f} at the start:")
        print(f"  CPU ms per message: this process {result['python_cpu_ms']['median']} (median of rounds), "
              f"PostgreSQL backend {result['postgres_cpu_ms']['median']}; statements per message {result['statements']}")
    finally:
        from django.db import connections

        connections.close_all()
        common.db_drop(DB)
        common.redis_flush()


if __name__ == "__main__":
    main()
