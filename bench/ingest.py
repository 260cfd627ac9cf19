"""Ingestion benchmark: messages through the `api` channel over HTTP onto timelines, end to end.

The production code path with real processes: gunicorn (2 workers, `omnicenter.wsgi:application`)
and a real Celery worker (`--concurrency 2`), PostgreSQL database `bench_omnicenter` (created,
migrated and dropped here) and Redis DB 13, with the production environment (DEBUG=0, encrypted
channel secrets). In the same run, the floor (`bench/floor.py`: one INSERT per request on the same
stack) is measured before and after, and the ratio ingest/floor is the figure that counts.

What it measures and prints:

1. SQL queries per message, in-process (django.test.Client against the inbound view, then
   a drain of that one event (`inbound_events_drain`), each inside CaptureQueriesContext), for each kind of message, at
   ~10k timeline entries and, after growing the database with set-based SQL, at ~1M (`--scale
   small`: 100k). The counts must be equal at both sizes.
2. Throughput: N messages posted with a bounded number in flight; messages/s from the first
   request sent to the last event processed (its entry committed on a timeline), and the webhook
   answer latency p50/p95/p99 under that load. The floor's requests/s with the same client.
3. Answer latency at a fixed rate (open loop, default 100 requests/s for 15 s).

Everything started here is stopped here (process groups, try/finally); traffic goes to 127.0.0.1.

    .venv/bin/python bench/ingest.py --messages 500 --scale small     # quick
    .venv/bin/python bench/ingest.py                                  # full: 5000 messages, 1M entries
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, floor

DB_NAME = "bench_omnicenter"
SCALES = {"small": (10_000, 100_000), "full": (10_000, 1_000_000)}
# Each seeded customer: one email identity, two tickets of five entries (3 inbound with their
# stored event, 2 outbound replies).
ENTRIES_PER_CUSTOMER = 10
GROW_BATCH = 10_000  # customers per transaction
# The status of a seeded customer's latest ticket cycles with its number (seed % 5).
LATEST_STATUS = ("open", "solved", "pending", "closed", "new")
RESULTS = common.ROOT / "var" / "bench" / "ingest.json"
LOG_DIR = common.ROOT / "var" / "bench" / "logs"


# --- Growing the database with set-based SQL -----------------------------------------------------

def _seed_sql(table: str) -> str:
    """One INSERT ... SELECT generate_series per table. %(cb)s etc. are the id bases of this batch.

    This SQL follows the models by hand: a migration that adds a NOT NULL column to one of these
    tables makes the benchmark fail loudly at its first step, and the column belongs here."""
    text = "'Hello, about order ' || s || ': ' || repeat(md5(s::text || '-' || j || '-' || p) || ' ', 4)"
    sql = {
        "customers_customer": """
            INSERT INTO customers_customer (id, public_id, display_name, lifecycle_stage, language, attributes,
                                            created_at, updated_at)
            SELECT %(cb)s + k, gen_random_uuid(), 'Seed Customer ' || s, 'customer', 'en', '{}'::jsonb, t, t
            FROM generate_series(1, %(n)s) k,
                 LATERAL (SELECT %(s0)s + k AS s, %(t0)s::timestamptz + (%(s0)s + k) * interval '3 minutes' AS t) x
        """,
        "customers_identity": """
            INSERT INTO customers_identity (id, kind, namespace, value, verified, display_name, created_at,
                                            last_seen_at, customer_id)
            SELECT %(ib)s + k, 'email', '', 'seed-' || s || '@example.org', true, 'Seed Customer ' || s, t,
                   t + interval '31 days', %(cb)s + k
            FROM generate_series(1, %(n)s) k,
                 LATERAL (SELECT %(s0)s + k AS s, %(t0)s::timestamptz + (%(s0)s + k) * interval '3 minutes' AS t) x
        """,
        "tickets_ticket": """
            INSERT INTO tickets_ticket (id, public_id, subject, status, priority, created_at, updated_at,
                                        last_message_at, solved_at, closed_at, version, customer_id,
                                        origin_channel_id)
            SELECT %(tb)s + 2 * (k - 1) + j, gen_random_uuid(), 'Order ' || s || ', question ' || j, st, 'normal',
                   tt, tt + interval '50 minutes', tt + interval '50 minutes',
                   CASE WHEN st IN ('solved', 'closed') THEN tt + interval '2 hours' END,
                   CASE WHEN st = 'closed' THEN tt + interval '3 days' END,
                   5, %(cb)s + k, %(channel)s
            FROM generate_series(1, %(n)s) k, generate_series(1, 2) j,
                 LATERAL (SELECT %(s0)s + k AS s,
                                 %(t0)s::timestamptz + (%(s0)s + k) * interval '3 minutes'
                                     + (j - 1) * interval '30 days' + interval '1 hour' AS tt) x,
                 LATERAL (SELECT CASE WHEN j = 1 THEN 'closed'
                                      ELSE (ARRAY['open', 'solved', 'pending', 'closed', 'new'])[s %% 5 + 1]
                                 END AS st) y
        """,
        "channels_inbound_inboundevent": """
            INSERT INTO channels_inbound_inboundevent (id, external_id, payload, headers, status, attempts,
                                                       last_error, received_at, next_attempt_at, processed_at,
                                                       channel_id)
            SELECT %(eb)s + 6 * (k - 1) + 3 * (j - 1) + q, 'seed-' || s || '-' || j || '-' || q,
                   jsonb_build_object('id', 'seed-' || s || '-' || j || '-' || q,
                                      'from', jsonb_build_object('name', 'Seed Customer ' || s,
                                                                 'email', 'seed-' || s || '@example.org'),
                                      'text', TEXT),
                   '{}'::jsonb, 'processed', 1, '', tt + (2 * q - 2) * interval '10 minutes', NULL,
                   tt + (2 * q - 2) * interval '10 minutes' + interval '1 second', %(channel)s
            FROM generate_series(1, %(n)s) k, generate_series(1, 2) j, generate_series(1, 3) q,
                 LATERAL (SELECT %(s0)s + k AS s, 2 * q - 1 AS p,
                                 %(t0)s::timestamptz + (%(s0)s + k) * interval '3 minutes'
                                     + (j - 1) * interval '30 days' + interval '1 hour' AS tt) x
        """,
        "tickets_timelineentry": """
            INSERT INTO tickets_timelineentry (id, public_id, kind, direction, text, html, provider_message_id,
                                               delivery_status, delivery_error, delivery_attempts, is_auto_reply,
                                               data, created_at, sent_at, delivered_at, author_customer_id,
                                               channel_id, identity_id, inbound_event_id, ticket_id)
            SELECT %(xb)s + 10 * (k - 1) + 5 * (j - 1) + p, gen_random_uuid(), 'message',
                   CASE WHEN inbound THEN 'in' ELSE 'out' END, TEXT, '',
                   CASE WHEN inbound THEN 'seed-' || s || '-' || j || '-' || (p + 1) / 2 ELSE '' END,
                   CASE WHEN inbound THEN 'received' ELSE 'delivered' END, '',
                   CASE WHEN inbound THEN 0 ELSE 1 END, false, '{}'::jsonb, at,
                   CASE WHEN NOT inbound THEN at + interval '1 second' END,
                   CASE WHEN NOT inbound THEN at + interval '5 seconds' END,
                   CASE WHEN inbound THEN %(cb)s + k END, %(channel)s, %(ib)s + k,
                   CASE WHEN inbound THEN %(eb)s + 6 * (k - 1) + 3 * (j - 1) + (p + 1) / 2 END,
                   %(tb)s + 2 * (k - 1) + j
            FROM generate_series(1, %(n)s) k, generate_series(1, 2) j, generate_series(1, 5) p,
                 LATERAL (SELECT %(s0)s + k AS s, p %% 2 = 1 AS inbound,
                                 %(t0)s::timestamptz + (%(s0)s + k) * interval '3 minutes'
                                     + (j - 1) * interval '30 days' + interval '1 hour'
                                     + (p - 1) * interval '10 minutes' AS at) x
        """,
        # Every other seeded customer's tickets carry an external thread key, as `thread` sets them.
        "tickets_ticketthread": """
            INSERT INTO tickets_ticketthread (key, channel_id, customer_id, ticket_id)
            SELECT 'seed-' || s || '-thread-' || j, %(channel)s, %(cb)s + k, %(tb)s + 2 * (k - 1) + j
            FROM generate_series(1, %(n)s) k, generate_series(1, 2) j, LATERAL (SELECT %(s0)s + k AS s) x
            WHERE s %% 2 = 0
        """,
    }[table]
    return sql.replace("TEXT", text)


SEED_TABLES = ("customers_customer", "customers_identity", "tickets_ticket", "channels_inbound_inboundevent",
               "tickets_timelineentry", "tickets_ticketthread")
ID_BASES = {"customers_customer": "cb", "customers_identity": "ib", "tickets_ticket": "tb",
            "channels_inbound_inboundevent": "eb", "tickets_timelineentry": "xb"}


class Seeder:
    """Realistic history at scale: distinct customers with email identities, tickets with entries."""

    def __init__(self, *, channel_id: int, db_name: str = DB_NAME):
        self.channel_id = channel_id
        self.url = common.database_url(db_name)
        self.seeded = 0  # seeded customers so far, numbered 1..seeded
        # The whole history lies in the past, before any message of the benchmark.
        self.t0 = datetime.now(UTC) - timedelta(days=400)

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, connect_timeout=5)

    def entries(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM tickets_timelineentry").fetchone()[0]

    def grow_to(self, target_entries: int) -> None:
        current = self.entries()
        customers = max(0, -(-(target_entries - current) // ENTRIES_PER_CUSTOMER))
        if not customers:
            return
        common.log(f"growing: {current:,} -> ~{current + customers * ENTRIES_PER_CUSTOMER:,} timeline entries "
                   f"({customers:,} customers)")
        started = time.perf_counter()
        with self._connect() as conn:
            conn.execute("SET synchronous_commit = off")
            done = 0
            while done < customers:
                n = min(GROW_BATCH, customers - done)
                with conn.transaction():
                    params = {"n": n, "s0": self.seeded, "t0": self.t0, "channel": self.channel_id}
                    for table, key in ID_BASES.items():  # explicit ids: rows of one batch refer to each other
                        params[key] = conn.execute(f"SELECT COALESCE(max(id), 0) FROM {table}").fetchone()[0]  # noqa: S608
                    for table in SEED_TABLES:
                        conn.execute(_seed_sql(table), params)
                self.seeded += n
                done += n
                if customers > GROW_BATCH:
                    common.log(f"  {done:,}/{customers:,} customers")
            for table in SEED_TABLES:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
                )
            conn.commit()
        self.analyze()
        common.log(f"grown in {time.perf_counter() - started:.0f} s; now {self.entries():,} timeline entries")

    def analyze(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for table in SEED_TABLES:
                conn.execute(f"VACUUM (ANALYZE) {table}")

    def seeds_with_thread(self, *, count: int, low: int) -> list[int]:
        """The highest seed numbers >= low whose latest ticket is open and has a thread key."""
        found = [s for s in range(self.seeded, low - 1, -1) if s % 10 == 0][:count]
        if len(found) < count:
            raise RuntimeError(f"not enough seeded customers with a thread above {low}")
        return found

    def seeds(self, *, status: str, count: int, low: int) -> list[int]:
        """Seed numbers >= low whose latest ticket has `status`."""
        mod = LATEST_STATUS.index(status)
        first = low + (mod - low) % 5
        found = list(range(first, self.seeded + 1, 5))[:count]
        if len(found) < count:
            raise RuntimeError(f"not enough seeded customers with a {status} ticket above {low}")
        return found


# --- Messages ------------------------------------------------------------------------------------

def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(common.WORDS) for _ in range(rng.randint(20, 70))).capitalize() + "."


def payload(message_id: str, *, email: str, name: str, text: str, thread: str = "") -> bytes:
    body = {"id": message_id, "from": {"name": name, "email": email}, "text": text}
    if thread:
        body["thread"] = thread
    return json.dumps(body).encode()


def seeded_sender(s: int) -> dict[str, str]:
    return {"email": f"seed-{s}@example.org", "name": f"Seed Customer {s}"}


def message_plan(count: int, *, run: str, seeded: int, rng: random.Random) -> list[bytes]:
    """A realistic mix: 20% from customers in the seeded history (their latest ticket open, solved,
    pending, closed or new), 80% from new senders who write about 4 times each, 10% with a thread."""
    new_senders = max(1, int(count * 0.8) // 4)
    bodies = []
    for i in range(count):
        if seeded and rng.random() < 0.2:
            sender = seeded_sender(rng.randint(1, seeded))
            thread = ""
        else:
            k = rng.randrange(new_senders)
            sender = {"email": f"{run}-{k}@example.net", "name": f"Sender {k} of {run}"}
            thread = f"{run}-conversation-{k}" if rng.random() < 0.1 else ""
        bodies.append(payload(f"{run}-{i}", text=_text(rng), thread=thread, **sender))
    return bodies


# --- In-process: queries per message -------------------------------------------------------------

CASES = (
    ("new sender", "a sender never seen: customer, identity and ticket are created"),
    ("returning, open ticket", "a known customer whose latest ticket is open: appended to it"),
    ("returning, solved ticket", "appended, and the ticket reopens (one system entry more)"),
    ("returning, closed ticket", "a follow-up ticket is opened"),
    ("returning, new thread", "a known customer starts a new thread: a new ticket and its thread row"),
    ("returning, known thread", "a known customer writes on a thread we know: appended to its ticket"),
)


def _case_senders(case: str, seeder: Seeder, *, count: int, low: int, run: str) -> list[tuple[dict, str]]:
    if case == "new sender":
        return [({"email": f"{run}-q{i}@example.net", "name": f"Query sample {i}"}, "") for i in range(count)]
    if case == "returning, known thread":
        return [(seeded_sender(s), f"seed-{s}-thread-2") for s in seeder.seeds_with_thread(count=count, low=low)]
    status = {"returning, open ticket": "open", "returning, solved ticket": "solved",
              "returning, closed ticket": "closed", "returning, new thread": "open"}[case]
    # The open-ticket and new-thread samples must not share customers.
    offset = count if case == "returning, new thread" else 0
    seeds = seeder.seeds(status=status, count=count + offset, low=low)[offset:]
    thread = case == "returning, new thread"
    return [(seeded_sender(s), f"{run}-thread-{s}" if thread else "") for s in seeds]


def measure_queries(*, channel, secret: str, seeder: Seeder, sample: int, low: int, run: str) -> dict:
    """Queries of the inbound view and of processing, per message, for each case (no worker runs:
    the tasks this enqueues are flushed from Redis afterwards)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from channels_inbound.services import inbound_events_drain

    # Webhook views cache the channel for CHANNEL_CACHE_SECONDS; a sample that crossed an expiry
    # would count one statement more. Counted here with the cache warm, as almost every request is.
    settings.CHANNEL_CACHE_SECONDS = 3600
    client = Client(HTTP_HOST=common.HOST)
    url = reverse("api-channel-inbound", args=[channel.key])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    rng = random.Random(11)

    def one(message_id: str, sender: dict, thread: str) -> dict:
        body = payload(message_id, text=_text(rng), thread=thread, **sender)
        timer = _StatementTimer()
        with CaptureQueriesContext(connection) as view_q, connection.execute_wrapper(timer):
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.post(url, data=body, content_type="application/json", **headers)
            view = (time.perf_counter() - t0, time.process_time() - c0, timer.take())
        if response.status_code != 202:
            raise RuntimeError(f"inbound view answered {response.status_code}: {response.content[:300]!r}")
        event_id = response.json()["event_id"]
        with CaptureQueriesContext(connection) as process_q, connection.execute_wrapper(timer):
            t0, c0 = time.perf_counter(), time.process_time()
            # The worker's path: a drain, here of this one event. Of its statements, 3 belong to the
            # drain, not the message (the claim, the channels, the empty claim that ends it), and
            # a batch of up to INBOUND_BATCH_SIZE messages shares them.
            handled = inbound_events_drain()
            process = (time.perf_counter() - t0, time.process_time() - c0, timer.take())
        if handled != 1:
            raise RuntimeError(f"the drain handled {handled} events instead of {event_id} alone")
        from channels_inbound.models import InboundEvent

        if (status := InboundEvent.objects.get(pk=event_id).status) != InboundEvent.Status.PROCESSED:
            raise RuntimeError(f"event {event_id} was {status}")
        return {"view_q": view_q.captured_queries, "process_q": process_q.captured_queries,
                "view": view, "process": process}

    # The first request of a process pays one-time costs; keep it out of the figures.
    one(f"{run}-warmup", {"email": f"{run}-warmup@example.net", "name": "Warm up"}, "")

    results = {}
    for case, _about in CASES:
        samples = [
            one(f"{run}-{case.replace(' ', '').replace(',', '')}-{i}", sender, thread)
            for i, (sender, thread) in enumerate(_case_senders(case, seeder, count=sample, low=low, run=run))
        ]
        views = [len(x["view_q"]) for x in samples]
        processes = [len(x["process_q"]) for x in samples]

        def median_ms(part: str, index: int, samples=samples) -> float:
            return round(statistics.median(x[part][index] for x in samples) * 1000, 2)

        results[case] = {
            "view_queries": sorted(set(views)),
            "process_queries": sorted(set(processes)),
            "total_queries": sorted({v + p for v, p in zip(views, processes, strict=True)}),
            # Medians over the sample, in-process: wall time, CPU time of this process, and wall
            # time inside SQL statements (round trip included; BEGIN and COMMIT are not statements).
            "view_ms": median_ms("view", 0), "view_cpu_ms": median_ms("view", 1), "view_sql_ms": median_ms("view", 2),
            "process_ms": median_ms("process", 0), "process_cpu_ms": median_ms("process", 1),
            "process_sql_ms": median_ms("process", 2),
            "queries": {"view": [q["sql"] for q in samples[0]["view_q"]],
                        "process": [q["sql"] for q in samples[0]["process_q"]]},
        }
    return results


class _StatementTimer:
    """A database execute wrapper that adds up the wall time spent inside SQL statements."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def _format_queries(results: dict) -> list[str]:
    lines = []
    for case, r in results.items():
        lines.append(f"  {case:<26} view {_fmt(r['view_queries']):>3} + processing {_fmt(r['process_queries']):>3}"
                     f" = {_fmt(r['total_queries']):>3} queries | in-process ms (wall/CPU/in SQL): view "
                     f"{r['view_ms']:.1f}/{r['view_cpu_ms']:.1f}/{r['view_sql_ms']:.1f}, processing "
                     f"{r['process_ms']:.1f}/{r['process_cpu_ms']:.1f}/{r['process_sql_ms']:.1f}")
    return lines


def _fmt(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else "/".join(map(str, values))


# --- Over HTTP: throughput and latency ----------------------------------------------------------

def _event_stats(first_event_id: int) -> dict:
    from django.db.models import Count, Max, Q

    from channels_inbound.models import InboundEvent

    return InboundEvent.objects.filter(pk__gt=first_event_id).aggregate(
        total=Count("id"),
        processed=Count("id", filter=Q(status=InboundEvent.Status.PROCESSED)),
        failed=Count("id", filter=Q(status__in=[InboundEvent.Status.FAILED, InboundEvent.Status.DEAD])),
        last_processed=Max("processed_at"),
    )


def _last_event_id() -> int:
    from channels_inbound.models import InboundEvent

    return InboundEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def wait_processed(first_event_id: int, expected: int, *, timeout: float) -> dict:
    """Poll until every event after `first_event_id` is processed (or one fails, or time runs out)."""
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        stats = _event_stats(first_event_id)
        if stats["processed"] >= expected or stats["failed"] or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def _entries_for(first_event_id: int) -> int:
    from tickets.models import TimelineEntry

    return TimelineEntry.objects.filter(
        inbound_event_id__gt=first_event_id, kind=TimelineEntry.Kind.MESSAGE,
        direction=TimelineEntry.Direction.INBOUND,
    ).count()


def _processing_lag_ms(first_event_id: int) -> dict[str, float]:
    """Stored (answered) -> processed (on a timeline), from the events' own timestamps."""
    from channels_inbound.models import InboundEvent

    lags = [
        (processed - received).total_seconds()
        for received, processed in InboundEvent.objects.filter(pk__gt=first_event_id, processed_at__isnull=False)
        .values_list("received_at", "processed_at")
    ]
    return {name: round(common.percentile(lags, q) * 1000, 1) for name, q in (("p50", 50), ("p95", 95), ("p99", 99))}


def _failures(first_event_id: int) -> list[str]:
    from channels_inbound.models import InboundEvent

    return list(
        InboundEvent.objects.filter(pk__gt=first_event_id, status__in=["failed", "dead"])
        .values_list("last_error", flat=True)[:5]
    )


def _postgres_backends(db_name: str):
    def find() -> list[int]:
        with common._admin_connection() as conn:
            return [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db_name]
            )]
    return find


def run_ingest_load(url: str, bodies: list[bytes], *, secret: str, concurrency: int, meter: common.CpuMeter,
                    label: str, open_rate: float | None = None, duration: float = 0) -> dict:
    """Send `bodies` (closed loop, or open loop at `open_rate`), then wait until all are on timelines."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    first_event_id = _last_event_id()
    common.log(f"{label}: sending {len(bodies) if open_rate is None else int(open_rate * duration)} messages")
    meter.start()
    if open_rate is None:
        load = common.run_async(common.closed_loop(url, bodies, headers=headers, concurrency=concurrency))
    else:
        load = common.run_async(common.open_loop(url, iter(bodies), headers=headers, rate=open_rate,
                                                 duration=duration))
    answered = time.time()
    # Bounded: at least 5 messages/s after the last answer, or the run is reported incomplete.
    stats = wait_processed(first_event_id, load.ok, timeout=120 + load.ok / 5)
    cpu = meter.stop()
    entries = _entries_for(first_event_id)
    last = stats["last_processed"].timestamp() if stats["last_processed"] else answered
    end_to_end = last - load.first_send_wall
    out = {
        "http": load.summary(),
        "events": {k: v for k, v in stats.items() if k != "last_processed"},
        "timeline_entries": entries,
        "end_to_end_s": round(end_to_end, 3),
        "messages_per_s": round(stats["processed"] / end_to_end, 1) if end_to_end > 0 else 0.0,
        "drain_after_last_answer_s": round(max(0.0, last - answered), 3),
        "stored_to_timeline_ms": _processing_lag_ms(first_event_id),
        "cpu_ms_per_message": {k: round(v * 1000 / max(1, load.ok), 3) for k, v in cpu.items() if k != "wall"},
        "complete": stats["processed"] == load.ok == load.sent and entries == load.ok and not stats["failed"],
    }
    if not out["complete"]:
        out["failures"] = _failures(first_event_id)
    return out


def _pids_of(service: common.Service):
    return lambda: common.group_pids(service.process.pid)


def measure_floor(url: str, bodies: list[bytes], *, concurrency: int, meter: common.CpuMeter) -> dict:
    meter.start()
    result = floor.floor_measure(url, bodies, concurrency=concurrency)
    cpu = meter.stop()
    # floor_measure sends a warm-up of 100 first; spread the CPU over everything sent.
    sent = result.sent + min(100, len(bodies))
    return {**result.summary(), "cpu_ms_per_request": {
        k: round(v * 1000 / sent, 3) for k, v in cpu.items() if k != "wall"}}


def profile_run(py_spy: str, url: str, services: list[common.Service], *, secret: str, concurrency: int,
                meter: common.CpuMeter, bodies: list[bytes]) -> dict:
    """One more closed-loop run under py-spy (sampling costs CPU: its figures are not the benchmark's)."""
    out_dir = common.ROOT / "var" / "bench"
    with common.py_spy_record(py_spy, services, out_dir) as outputs:
        run_ingest_load(url, bodies, secret=secret, concurrency=concurrency, meter=meter, label="profiled run")
    profile = {}
    for service, out in zip(services, outputs, strict=True):
        if not out.exists():
            common.log(f"py-spy wrote no profile for {service.name}")
            continue
        rows = common.profile_summary(out, top=40)
        profile[service.name] = [{"inclusive_pct": round(i, 1), "self_pct": round(o, 1), "frame": f} for i, o, f in rows]
        print(f"\n--- where {service.name} spends its samples ({out}) ---", flush=True)
        for inclusive, own, frame in rows:
            print(f"  {inclusive:5.1f}%  (self {own:4.1f}%)  {frame}", flush=True)
    return profile


# --- The run -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="messages in the throughput run (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight in closed-loop runs")
    parser.add_argument("--rate", type=float, default=100, help="open-loop requests/s (default 100)")
    parser.add_argument("--duration", type=float, default=15, help="open-loop seconds (default 15)")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full",
                        help="database sizes for the query counts: small = 10k and 100k entries, full = 10k and 1M")
    parser.add_argument("--skip-growth", action="store_true", help="only the small database size")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor (no ratio)")
    parser.add_argument("--query-sample", type=int, default=10, help="messages per case for the query counts")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {DB_NAME} for inspection")
    parser.add_argument("--py-spy", metavar="PATH", default=None,
                        help="py-spy binary: adds a profiled run (not counted in the figures) of the web and worker")
    parser.add_argument("--worker-nice", type=int, default=0, metavar="N",
                        help="run the Celery worker under `nice -n N` (webhook answers first, the queue absorbs the rest)")
    parser.add_argument("--settings", default="omnicenter.settings",
                        help="settings module of every Omnicenter process (to try a change before making it)")
    parser.add_argument("--pythonpath", metavar="DIR", default="", help="prepended to PYTHONPATH (with --settings)")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    common.stop_on_sigterm()

    small_size, large_size = SCALES[args.scale]
    run = "b" + format(random.getrandbits(24), "06x")
    rng = random.Random(run)
    var_dir = Path(tempfile.mkdtemp(prefix="omnicenter-bench-"))
    env = common.production_env(db_name=DB_NAME, var_dir=var_dir,
                                extra={"DJANGO_SETTINGS_MODULE": args.settings})
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.pythonpath).resolve()), env["PYTHONPATH"]])
    results: dict = {"machine": common.machine_info(), "args": {k: str(v) for k, v in vars(args).items()}}
    common.log(f"machine: {results['machine']['nproc']} cores, load average {results['machine']['load_average']}")

    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, var_dir, True)
        common.db_recreate(DB_NAME)
        if not args.keep_db:
            stack.callback(common.db_drop, DB_NAME)
        common.redis_flush()
        stack.callback(common.redis_flush)
        common.log(f"migrating {DB_NAME}")
        common.run_checked([common.PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env=env)

        common.django_setup(env)
        from django.db import connections

        from channels_inbound.services import channel_create

        stack.callback(connections.close_all)
        channel, generated = channel_create(kind="api", name="Benchmark API")
        secret = generated["secret"]
        seeder = Seeder(channel_id=channel.pk)
        seeder.grow_to(small_size)

        # 1. Queries per message at the small size (no worker yet; what the view enqueues is flushed).
        common.log(f"queries per message at {seeder.entries():,} timeline entries")
        queries_small = measure_queries(channel=channel, secret=secret, seeder=seeder, sample=args.query_sample,
                                        low=1, run=run + "s")
        results["queries"] = {"small": {"entries": seeder.entries(), "cases": queries_small}}
        for line in _format_queries(queries_small):
            print(line, flush=True)
        common.redis_flush()

        # 2. Servers: the floor, Omnicenter's gunicorn, a Celery worker.
        bodies = message_plan(args.messages, run=run, seeded=seeder.seeded, rng=rng)
        floor_url = floor_meter = None
        if not args.no_floor:
            floor_env = floor.floor_env()
            floor.floor_prepare(floor_env)
            stack.callback(common.db_drop, floor.FLOOR_DB)
            floor_url, floor_web = floor.floor_start(stack, floor_env, log_dir=LOG_DIR)
            floor_meter = common.CpuMeter({"web": _pids_of(floor_web), "postgres": _postgres_backends(floor.FLOOR_DB)})
        port = common.free_port()
        web = common.start_service(stack, "omnicenter-gunicorn", common.gunicorn_cmd("omnicenter.wsgi:application", port),
                                   env=env, log_dir=LOG_DIR)
        worker = common.start_service(
            stack, "celery-worker",
            [*(["nice", "-n", str(args.worker_nice)] if args.worker_nice else []),
             common.PYTHON, "-m", "celery", "-A", "omnicenter", "worker", "--concurrency", "2", "--loglevel", "WARNING"],
            env=env, log_dir=LOG_DIR,
        )
        base = f"http://{common.HOST}:{port}"
        common.wait_http(f"{base}/healthz", service=web)
        url = f"{base}/api/v1/channels/{channel.key}/inbound"
        meter = common.CpuMeter({"web": _pids_of(web), "worker": _pids_of(worker),
                                 "postgres": _postgres_backends(DB_NAME)})

        # Warm-up: both web workers and both worker processes import everything and connect.
        warm = message_plan(100, run=run + "w", seeded=seeder.seeded, rng=rng)
        warm_result = run_ingest_load(url, warm, secret=secret, concurrency=8, meter=meter, label="warm-up")
        if not warm_result["complete"]:
            raise RuntimeError(f"warm-up did not complete: {json.dumps(warm_result, default=str)}\n"
                               f"worker log:\n{worker.tail()}\nweb log:\n{web.tail()}")

        floor_runs = []
        if floor_url:
            common.log(f"floor: {len(bodies)} requests, {args.concurrency} in flight")
            floor_runs.append(measure_floor(floor_url, bodies, concurrency=args.concurrency, meter=floor_meter))
            common.log(f"floor: {floor_runs[-1]['requests_per_s']:.0f} requests/s")

        throughput = run_ingest_load(url, bodies, secret=secret, concurrency=args.concurrency, meter=meter,
                                     label="throughput")
        common.log(f"ingest: {throughput['messages_per_s']:.0f} messages/s end to end")

        if floor_url:
            common.log("floor again (the machine is shared: the mean of before and after is the floor)")
            floor_runs.append(measure_floor(floor_url, bodies, concurrency=args.concurrency, meter=floor_meter))
            common.log(f"floor: {floor_runs[-1]['requests_per_s']:.0f} requests/s")

        open_bodies = message_plan(int(args.rate * args.duration), run=run + "o", seeded=seeder.seeded, rng=rng)
        open_loop = run_ingest_load(url, open_bodies, secret=secret, concurrency=args.concurrency, meter=meter,
                                    label=f"open loop at {args.rate:.0f}/s for {args.duration:.0f} s",
                                    open_rate=args.rate, duration=args.duration)
        results["throughput"] = throughput
        results["open_loop"] = open_loop
        results["floor"] = floor_runs
        if args.py_spy:
            results["profile"] = profile_run(args.py_spy, url, [web, worker], secret=secret,
                                             concurrency=args.concurrency, meter=meter,
                                             bodies=message_plan(args.messages, run=run + "p", seeded=seeder.seeded,
                                                                 rng=rng))
        web.stop()
        worker.stop()
        common.redis_flush()

        # 3. Queries per message at the large size.
        if not args.skip_growth:
            low = seeder.seeded + 1
            seeder.grow_to(large_size)
            common.log(f"queries per message at {seeder.entries():,} timeline entries")
            queries_large = measure_queries(channel=channel, secret=secret, seeder=seeder, sample=args.query_sample,
                                            low=low, run=run + "l")
            results["queries"]["large"] = {"entries": seeder.entries(), "cases": queries_large}
            for line in _format_queries(queries_large):
                print(line, flush=True)
        connections.close_all()

    report = summarize(results)
    common.write_json(args.json, results)
    print("\n".join(report["lines"]), flush=True)
    print(f"\nfull results: {args.json}", flush=True)
    return 0 if report["ok"] else 1


def summarize(results: dict) -> dict:
    lines = ["", "=== Ingestion benchmark ==="]
    ok = True
    m = results["machine"]
    lines.append(f"machine: {m['nproc']} cores, {m['memory']}, {m['cpu']}; load average at start {m['load_average']}")
    t = results["throughput"]
    http = t["http"]
    lines.append(f"ingest (closed loop, {results['args']['concurrency']} in flight, {http['sent']} messages): "
                 f"{t['messages_per_s']:.0f} messages/s end to end ({t['end_to_end_s']:.2f} s, first request -> "
                 f"last on a timeline); HTTP alone {http['requests_per_s']:.0f} requests/s; answer latency "
                 f"p50 {http['latency_ms']['p50']:.1f} / p95 {http['latency_ms']['p95']:.1f} / "
                 f"p99 {http['latency_ms']['p99']:.1f} ms")
    lines.append("  CPU ms per message: " + ", ".join(f"{k} {v:.2f}" for k, v in t["cpu_ms_per_message"].items()))
    if not t["complete"]:
        ok = False
        lines.append(f"  INCOMPLETE: {t['events']} entries {t['timeline_entries']} {t.get('failures')}")
    if results["floor"]:
        rates = [f["requests_per_s"] for f in results["floor"]]
        floor_rate = statistics.mean(rates)
        ratio = t["messages_per_s"] / floor_rate if floor_rate else 0
        results["ratio"] = round(ratio, 3)
        lines.append(f"floor (one INSERT per request, same stack and client): {floor_rate:.0f} requests/s "
                     f"(runs: {', '.join(f'{r:.0f}' for r in rates)}); CPU ms per request: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in results["floor"][0]["cpu_ms_per_request"].items()))
        lines.append(f"RATIO ingest/floor: {ratio:.0%} (target >= 50%): {'MET' if ratio >= 0.5 else 'NOT MET'}")
    o = results["open_loop"]
    lat = o["http"]["latency_ms"]
    lines.append(f"open loop ({results['args']['rate']}/s for {results['args']['duration']} s, {o['http']['sent']} sent, "
                 f"{o['http']['late_sends']} late sends): answer latency p50 {lat['p50']:.1f} / p95 {lat['p95']:.1f} / "
                 f"p99 {lat['p99']:.1f} ms (target p99 < 50 ms: {'MET' if lat['p99'] < 50 else 'NOT MET'}); "
                 f"stored -> on a timeline p50 {o['stored_to_timeline_ms']['p50']:.0f} / p99 "
                 f"{o['stored_to_timeline_ms']['p99']:.0f} ms")
    if not o["complete"]:
        ok = False
        lines.append(f"  INCOMPLETE: {o['events']} entries {o['timeline_entries']} {o.get('failures')}")
    q = results["queries"]
    for size in ("small", "large"):
        if size in q:
            lines.append(f"SQL queries per message at {q[size]['entries']:,} timeline entries (view + processing):")
            lines += _format_queries(q[size]["cases"])
    if "large" in q:
        same = all(
            q["small"]["cases"][c]["total_queries"] == q["large"]["cases"][c]["total_queries"]
            and len(q["small"]["cases"][c]["total_queries"]) == 1
            for c in q["small"]["cases"]
        )
        results["queries_constant"] = same
        lines.append(f"query counts equal at both sizes: {'YES' if same else 'NO'}")
        ok = ok and same
    return {"lines": lines, "ok": ok}


if __name__ == "__main__":
    sys.exit(main())
