"""Workspace benchmark: the inbox list, a ticket page and a full-text search on a large database,
and the fan-out of one live event to N connected agent sockets.

Data is generated with PostgreSQL COPY (never the ORM): `--scale 1` is 1,000,000 tickets with
5,000,000 timeline entries and 200 agents in 10 teams; `--scale 0.02` is 20,000 / 100,000 / 200
(agents never fewer than 200: the fan-out is measured against 200 sockets whatever the scale).
The database (`bench_inbox`) is created, migrated, filled, measured and dropped (`--keep-db`
keeps it); its disk size is reported. `--generate-only` fills and keeps it without measuring, and
`--reuse-db` measures one filled before, so the full size is generated once (about 9 minutes and
3 GB here).

1. Server time (Django's test client in this process, production settings, DEBUG=0, the real
   views and templates; no network): the inbox list (`/app/?view=open` and `?view=teams`), a
   ticket page (`/app/tickets/N/`, a ticket with 5 entries on average), a full-text search
   (`/app/?view=all&q=...`), each `--requests` times as an agent of one team, p50 and p95.
2. Fan-out: uvicorn serving the ASGI application (one process, production settings, Redis
   channel layer), `--sockets` websocket clients signed in as agents of one team, `--events`
   events published to that team's group (what a new message does), `--spacing` apart (0.5 s).
   Time from publish to arrival on every socket: p50, p99, max, lost deliveries, each event's
   first/median/last arrival, and the CPU of the server and of this client per event.

    .venv/bin/python bench/inbox.py --scale 0.02            # quick (about 2 minutes)
    .venv/bin/python bench/inbox.py --generate-only --db bench_inbox_1m      # full: 1M tickets, once
    .venv/bin/python bench/inbox.py --reuse-db --db bench_inbox_1m          # then measure it
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB = "bench_inbox"
TEAMS = 10
TARGETS = {"inbox_p95_ms": 100, "ticket_p95_ms": 150, "search_p95_ms": 300, "fanout_p99_ms": 100}


# --- data ------------------------------------------------------------------------------------------

def _copy_rows(cursor, model, rows, fixed: dict) -> int:
    """COPY `rows` (dicts) into `model`'s table; columns not given take the field's default."""
    from django.db.models import CharField, JSONField, TextField

    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.name == "id")]
    columns = [f.column for f in fields]
    defaults = {}
    for f in fields:
        if f.has_default():
            value = f.get_default()
            defaults[f.column] = json.dumps(value) if isinstance(f, JSONField) else value
        else:
            defaults[f.column] = "" if not f.null and isinstance(f, CharField | TextField) else None
    count = 0
    table = model._meta.db_table
    with cursor.copy(f'COPY "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) FROM STDIN') as copy:
        for row in rows:
            values = {**defaults, **fixed, **row}
            copy.write_row([values[c] for c in columns])
            count += 1
    return count


@contextlib.contextmanager
def _indexes_dropped(cursor, models):
    """Drop the secondary indexes of `models`' tables for a bulk load and build them again after
    (what any bulk load does: one sorted build instead of millions of index insertions, GIN
    included). Indexes behind constraints (primary keys, unique constraints) stay."""
    definitions = []
    for model in models:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = %s"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [model._meta.db_table],
        )
        definitions += cursor.fetchall()
    for name, _ in definitions:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    cursor.execute("SET maintenance_work_mem = '1GB'")
    for name, definition in definitions:
        started = time.perf_counter()
        cursor.execute(definition)
        common.log(f"index {name}: {time.perf_counter() - started:.0f} s")


def generate(scale: float, *, password_hash: str) -> dict:
    """Fill the database; returns what was made (ids the measurements need)."""
    import uuid

    from django.contrib.auth.models import Group
    from django.db import connection

    from customers.models import Customer, Identity
    from omnicenter.models import User
    from tickets.models import Team, Ticket, TimelineEntry

    rng = random.Random(7)
    n_tickets = max(1000, int(1_000_000 * scale))
    n_entries = n_tickets * 5
    n_customers = max(500, n_tickets // 2)
    n_agents = max(200, int(200 * scale))
    now = datetime.now(UTC)
    words = common.WORDS

    agent_group = Group.objects.get_or_create(name="agent")[0]
    teams = [Team.objects.create(name=f"Team {i}") for i in range(TEAMS)]
    with connection.cursor() as c:
        cursor = c.connection.cursor()
        _copy_rows(cursor, User, ({
            "username": f"agent{i}", "first_name": f"Agent{i}", "last_name": "Bench", "email": f"agent{i}@example.com",
            "password": password_hash, "is_active": True, "is_staff": False, "is_superuser": False,
            "date_joined": now, "language": "",
        } for i in range(n_agents)), {})
        agents = list(User.objects.order_by("pk").values_list("pk", flat=True))
        User.groups.through.objects.bulk_create([User.groups.through(user_id=a, group_id=agent_group.pk) for a in agents])
        Team.members.through.objects.bulk_create(
            [Team.members.through(team_id=teams[i % TEAMS].pk, user_id=a) for i, a in enumerate(agents)]
        )
        common.log(f"{n_customers} customers")
        _copy_rows(cursor, Customer, ({
            "public_id": uuid.UUID(int=rng.getrandbits(128)), "display_name": f"Customer {i}", "created_at": now,
            "updated_at": now, "lifecycle_stage": "customer", "language": rng.choice(["en", "pl", "ru"]),
        } for i in range(n_customers)), {})
        first_customer = Customer.objects.order_by("pk").values_list("pk", flat=True).first()
        _copy_rows(cursor, Identity, ({
            "customer_id": first_customer + i, "kind": "email", "namespace": "", "value": f"c{i}@example.org",
            "verified": True, "display_name": "", "created_at": now,
        } for i in range(n_customers)), {})
        common.log(f"{n_tickets} tickets")
        statuses = ["new"] * 10 + ["open"] * 15 + ["pending"] * 5 + ["solved"] * 30 + ["closed"] * 40
        priorities = ["low"] * 2 + ["normal"] * 6 + ["high", "urgent"]

        def tickets():
            for i in range(n_tickets):
                at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 365))
                status = rng.choice(statuses)
                yield {
                    "public_id": uuid.UUID(int=rng.getrandbits(128)),
                    "subject": " ".join(rng.choices(words, k=rng.randint(3, 8))),
                    "status": status, "priority": rng.choice(priorities),
                    "customer_id": first_customer + rng.randrange(n_customers),
                    "team_id": teams[i % TEAMS].pk,
                    "assignee_id": rng.choice(agents) if rng.random() < 0.6 else None,
                    "created_at": at, "updated_at": at, "last_message_at": at, "version": 1,
                }

        with _indexes_dropped(cursor, [Ticket, TimelineEntry]):
            _copy_rows(cursor, Ticket, tickets(), {})
            first_ticket = Ticket.objects.order_by("pk").values_list("pk", flat=True).first()
            common.log(f"{n_entries} timeline entries")

            def entries():
                for i in range(n_entries):
                    ticket = first_ticket + (i // 5 if i < n_tickets * 5 else rng.randrange(n_tickets))
                    inbound = rng.random() < 0.55
                    kind = "message" if rng.random() < 0.85 else rng.choice(["note", "event"])
                    yield {
                        "public_id": uuid.UUID(int=rng.getrandbits(128)), "ticket_id": ticket, "kind": kind,
                        "direction": ("in" if inbound else "out") if kind == "message" else "",
                        "text": " ".join(rng.choices(words, k=rng.randint(8, 60))),
                        "delivery_status": ("received" if inbound else "delivered") if kind == "message" else "",
                        "created_at": now - timedelta(minutes=rng.randint(1, 60 * 24 * 365)),
                        "author_user_id": None if inbound else rng.choice(agents),
                    }

            _copy_rows(cursor, TimelineEntry, entries(), {})
            common.log("indexes")
        cursor.close()
    return {"tickets": n_tickets, "entries": n_entries, "customers": n_customers, "agents": n_agents,
            "team": teams[0], "first_ticket": first_ticket}


def vacuum_analyze(env: dict) -> str:
    import psycopg

    with psycopg.connect(common.database_url(DB), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    return size


def existing() -> dict:
    """What `generate` returned, read back from a database it filled."""
    from django.db.models import Min

    from omnicenter.models import User
    from tickets.models import Team, Ticket, TimelineEntry

    return {"tickets": Ticket.objects.count(), "entries": TimelineEntry.objects.count(),
            "customers": None, "agents": User.objects.count(),
            "team": Team.objects.get(name="Team 0"), "first_ticket": Ticket.objects.aggregate(m=Min("pk"))["m"]}


def database_size() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return cursor.fetchone()[0]


# --- server time -------------------------------------------------------------------------------------

def measure_pages(made: dict, requests: int, only: list[str] | None = None) -> dict:
    from django.test import Client

    from omnicenter.models import User
    from tickets.models import Ticket

    agent = User.objects.filter(teams=made["team"]).order_by("pk").first()
    client = Client(HTTP_HOST=common.HOST)
    client.force_login(agent)
    tickets = list(Ticket.objects.filter(team=made["team"], status__in=["new", "open", "pending"]).values_list("pk", flat=True)[:500])
    rng = random.Random(3)
    words = common.WORDS
    cases = {
        "inbox_open": lambda: "/app/?view=open",
        "inbox_teams_fragment": lambda: "/app/?view=teams&fragment=list",
        "ticket_page": lambda: f"/app/tickets/{rng.choice(tickets)}/",
        "ticket_pane_fragment": lambda: f"/app/tickets/{rng.choice(tickets)}/?fragment=pane",
        "search": lambda: f"/app/?view=all&q={rng.choice(words)}+{rng.choice(words)[:4]}",
    }
    unknown = set(only or ()) - set(cases)
    if unknown:
        raise SystemExit(f"--pages: unknown {sorted(unknown)}; choose from {sorted(cases)}")
    results = {}
    for name, url in cases.items():
        if only and name not in only:
            continue
        for _ in range(3):  # warm
            assert client.get(url()).status_code == 200
        times = []
        for _ in range(requests):
            target = url()
            started = time.perf_counter()
            response = client.get(target)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (target, response.status_code)
        results[name] = {"p50_ms": round(common.percentile(times, 50), 1), "p95_ms": round(common.percentile(times, 95), 1),
                         "n": requests}
        common.log(f"{name}: p50 {results[name]['p50_ms']} ms, p95 {results[name]['p95_ms']} ms")
    return results


# --- fan-out -----------------------------------------------------------------------------------------

def measure_fanout(env: dict, made: dict, *, sockets: int, n_events: int, spacing: float, warmup: int,
                   log_dir: Path) -> dict:
    import websockets
    from django.conf import settings
    from django.test import Client

    from omnicenter import events
    from omnicenter.models import User

    agents = list(User.objects.filter(teams=made["team"]).order_by("pk"))
    cookies = []
    for i in range(sockets):
        client = Client(HTTP_HOST=common.HOST)
        client.force_login(agents[i % len(agents)])
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")

    port = common.free_port()
    with contextlib.ExitStack() as stack:
        server = common.start_service(stack, "inbox-uvicorn", [
            str(common.VENV_BIN / "uvicorn"), "omnicenter.asgi:application", "--host", common.HOST, "--port", str(port),
            "--log-level", "warning", "--lifespan", "off",
        ], env=env, log_dir=log_dir)
        common.wait_http(f"http://{common.HOST}:{port}/healthz", service=server)
        url = f"ws://{common.HOST}:{port}/ws/agent/"
        origin = f"http://{common.HOST}:{port}"
        group = events.team_group(made["team"].pk)

        async def run() -> dict:
            started = time.perf_counter()
            connections = await asyncio.gather(*(
                websockets.connect(url, origin=origin, additional_headers={"Cookie": cookie}, open_timeout=30, max_queue=None)
                for cookie in cookies
            ), return_exceptions=True)
            connect_seconds = time.perf_counter() - started
            failed = [c for c in connections if isinstance(c, BaseException)]
            live = [c for c in connections if not isinstance(c, BaseException)]
            common.log(f"{len(live)} sockets connected in {connect_seconds:.2f} s ({len(failed)} failed)")
            if failed:
                common.log(f"first failure: {failed[0]!r}")
            arrivals: dict[int, list[float]] = {}

            async def listen(ws) -> None:
                with contextlib.suppress(Exception):
                    async for raw in ws:
                        got = time.perf_counter()
                        data = json.loads(raw)
                        if data.get("type") == "ticket.created" and data.get("version", 0) >= 1_000_000:
                            arrivals.setdefault(data["version"], []).append(got)

            listeners = [asyncio.create_task(listen(ws)) for ws in live]
            await asyncio.sleep(1.0)
            sent: dict[int, float] = {}
            loop = asyncio.get_running_loop()

            async def publish(version: int) -> None:
                message = {"type": "oc.event", "event": {"type": "ticket.created", "ticket": made["first_ticket"], "version": version}}
                sent[version] = time.perf_counter()
                # The production publisher: events.send_now on its own loop thread, as a service does after commit.
                await loop.run_in_executor(None, events.send_now, [group], message)
                await asyncio.sleep(spacing)

            for i in range(warmup):  # not counted: see --warmup
                await publish(2_000_000 + i)
            meter = common.CpuMeter({"server": lambda: [server.process.pid]})
            meter.start()
            for i in range(n_events):
                await publish(1_000_000 + i)
            await asyncio.sleep(2.0)
            cpu = meter.stop()
            await asyncio.sleep(8.0)  # stragglers; anything later counts as lost
            for ws in live:
                await ws.close()
            for task in listeners:
                task.cancel()
            measured = {v: times for v, times in arrivals.items() if v < 2_000_000}
            latencies = [(t - sent[v]) * 1000 for v, times in measured.items() for t in times]
            per_event = [
                {"event": v - 1_000_000, "n": len(times), "first_ms": round((min(times) - sent[v]) * 1000, 1),
                 "p50_ms": round(common.percentile([(t - sent[v]) * 1000 for t in times], 50), 1),
                 "last_ms": round((max(times) - sent[v]) * 1000, 1)}
                for v, times in sorted(measured.items())
            ]
            expected = len(live) * n_events
            return {
                "sockets": len(live), "connect_failed": len(failed), "connect_seconds": round(connect_seconds, 2),
                "events": n_events, "warmup_events": warmup, "deliveries": len(latencies), "lost": expected - len(latencies),
                "p50_ms": round(common.percentile(latencies, 50), 1) if latencies else None,
                "p99_ms": round(common.percentile(latencies, 99), 1) if latencies else None,
                "max_ms": round(max(latencies), 1) if latencies else None,
                "cpu_ms_per_event": {k: round(v * 1000 / n_events, 1) for k, v in cpu.items() if k != "wall"},
                "per_event": per_event,
            }

        result = common.run_async(run())
        common.log(f"fan-out: { {k: v for k, v in result.items() if k != 'per_event'} }")
        for row in sorted(result["per_event"], key=lambda r: -r["last_ms"])[:5]:
            common.log(f"  slowest event {row}")
        return result


def main() -> int:
    global DB
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 1,000,000 tickets, 5,000,000 entries")
    parser.add_argument("--requests", type=int, default=200, help="requests per measured page")
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between published events")
    parser.add_argument("--warmup", type=int, default=0, help="fan-out events sent first and not counted")
    parser.add_argument("--layer", choices=["core", "pubsub"], default="pubsub",
                        help="channels_redis layer for the fan-out (settings: CHANNEL_LAYER)")
    parser.add_argument("--skip-pages", action="store_true", help="measure the fan-out only")
    parser.add_argument("--pages", default="", help="comma-separated pages to time (inbox_open, inbox_teams_fragment, "
                        "ticket_page, ticket_pane_fragment, search); all by default")
    parser.add_argument("--skip-fanout", action="store_true", help="measure the pages only")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--generate-only", action="store_true",
                        help="create and fill the database, keep it, measure nothing (then time it with --reuse-db)")
    parser.add_argument("--reuse-db", action="store_true",
                        help="measure a database an earlier --keep-db or --generate-only run filled (migrated first)")
    parser.add_argument("--db", default=DB, help="scratch database name (bench_*): runs side by side need their own")
    args = parser.parse_args()
    if not args.db.startswith(common.DB_PREFIX):
        parser.error(f"--db must start with {common.DB_PREFIX}")
    DB = args.db
    common.stop_on_sigterm()

    var_dir = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    env = common.production_env(db_name=DB, var_dir=var_dir, extra={"CHANNEL_LAYER": args.layer})
    os.environ["CHANNEL_LAYER"] = args.layer  # the in-process publisher uses the same layer
    log_dir = common.ROOT / "var" / "bench" / "logs"
    machine = common.machine_info()
    common.log(f"machine: {machine}")
    keep = args.keep_db or args.generate_only or args.reuse_db
    if not args.reuse_db:
        common.db_recreate(DB)
    common.redis_flush()
    try:
        common.run_checked([common.PYTHON, "manage.py", "migrate", "-v", "0"], env=env, timeout=3600)
        common.run_checked([common.PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env)
        common.django_setup(env)
        if args.reuse_db:
            made = existing()
            size = database_size()
            common.log(f"reusing {DB}: {made['tickets']} tickets, {made['entries']} entries; database size {size}")
        else:
            from django.contrib.auth.hashers import make_password

            started = time.perf_counter()
            made = generate(args.scale, password_hash=make_password("bench"))
            size = vacuum_analyze(env)
            common.log(f"generated in {time.perf_counter() - started:.0f} s; database size {size}")
            if args.generate_only:
                return 0
        pages = {} if args.skip_pages else measure_pages(made, args.requests, [p for p in args.pages.split(",") if p])
        load_after_pages = " ".join(f"{x:.2f}" for x in os.getloadavg())
        fanout = {} if args.skip_fanout else measure_fanout(env, made, sockets=args.sockets, n_events=args.events, spacing=args.spacing,
                                warmup=args.warmup, log_dir=log_dir)
        result = {
            "machine": machine, "command": " ".join(sys.argv), "scale": args.scale, "disk": size, "layer": args.layer,
            "data": {k: v for k, v in made.items() if k in ("tickets", "entries", "customers", "agents")},
            "pages": pages, "fanout": fanout, "targets": TARGETS, "load_average_after_pages": load_after_pages,
            "load_average_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
        common.write_json(common.ROOT / "var" / "bench" / "inbox.json", result)
        print(json.dumps(result, indent=2, default=str))
        return 0
    finally:
        if not keep:
            from django.db import connections

            connections.close_all()
            common.db_drop(DB)
        common.redis_flush()


if __name__ == "__main__":
    sys.exit(main())
