"""Server-side cost of the workspace pages, for profiling: CPU time per request, SQL statements,
and optionally a cProfile, on a database that `bench/inbox.py`'s generator filled and that stays
between runs (so two versions of the code can be compared in the same minute).

    .venv/bin/python bench/inbox_profile.py --setup --scale 0.02        # create and fill bench_inbox_profile
    .venv/bin/python bench/inbox_profile.py --requests 50               # CPU ms and queries per page
    .venv/bin/python bench/inbox_profile.py --cprofile ticket_page      # + the top functions of one page
    .venv/bin/python bench/inbox_profile.py --drop

CPU time is this process's (`time.process_time`): Python, templates and the driver, not
PostgreSQL's own time, which `--explain` shows per statement (EXPLAIN ANALYZE). On a shared
machine it moves far less with the load than wall-clock time does; both are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # bench/email.py must not shadow the standard library's email package.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB = "bench_inbox_profile"
VAR = Path(os.environ.get("BENCH_PROFILE_VAR", "/tmp/bench-inbox-profile"))


def cases(made: dict) -> dict:
    from tickets.models import Ticket

    tickets = list(Ticket.objects.filter(team=made["team"], status__in=["new", "open", "pending"]).order_by("pk")
                   .values_list("pk", flat=True)[:500])
    rng = random.Random(3)
    words = common.WORDS
    return {
        "inbox_open": lambda: "/app/?view=open",
        "inbox_teams_fragment": lambda: "/app/?view=teams&fragment=list",
        "ticket_page": lambda: f"/app/tickets/{rng.choice(tickets)}/",
        "ticket_pane_fragment": lambda: f"/app/tickets/{rng.choice(tickets)}/?fragment=pane",
        "search": lambda: f"/app/?view=all&q={rng.choice(words)}+{rng.choice(words)[:4]}",
    }


def main() -> int:
    global DB
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", action="store_true", help="(re)create the database and fill it")
    parser.add_argument("--drop", action="store_true")
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--cprofile", default="", help="a case name: print its top functions")
    parser.add_argument("--explain", default="", help="a case name: EXPLAIN ANALYZE each of its statements")
    parser.add_argument("--db", default=DB, help="scratch database name (bench_*)")
    args = parser.parse_args()
    if not args.db.startswith(common.DB_PREFIX):
        parser.error(f"--db must start with {common.DB_PREFIX}")
    DB = args.db
    VAR.mkdir(parents=True, exist_ok=True)
    env = common.production_env(db_name=DB, var_dir=VAR)
    if args.drop:
        common.db_drop(DB)
        return 0
    if args.setup:
        from bench import inbox

        inbox.DB = DB
        common.db_recreate(DB)
        common.run_checked([common.PYTHON, "manage.py", "migrate", "-v", "0"], env=env)
        common.run_checked([common.PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env)
        common.django_setup(env)
        from django.contrib.auth.hashers import make_password

        made = inbox.generate(args.scale, password_hash=make_password("bench"))
        common.log(f"database size {inbox.vacuum_analyze(env)}")
        (VAR / "made.json").write_text(json.dumps({"team": made["team"].pk, "first_ticket": made["first_ticket"]}))
        return 0

    common.django_setup(env)
    from django.db import connection
    from django.test import Client

    from omnicenter.models import User
    from tickets.models import Team

    saved = json.loads((VAR / "made.json").read_text())
    made = {"team": Team.objects.get(pk=saved["team"]), "first_ticket": saved["first_ticket"]}
    agent = User.objects.filter(teams=made["team"]).order_by("pk").first()
    client = Client(HTTP_HOST=common.HOST)
    client.force_login(agent)
    selected = cases(made)
    if args.only:
        selected = {k: v for k, v in selected.items() if k in args.only.split(",")}
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, url in selected.items():
        for _ in range(3):
            assert client.get(url()).status_code == 200
        statements: list[str] = []

        def record(execute, sql, params, many, context, statements=statements):
            statements.append(context["cursor"].mogrify(sql, params) if params else sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            assert client.get(url()).status_code == 200
        cpu, wall = [], []
        for _ in range(args.requests):
            target = url()
            c0, w0 = time.process_time(), time.perf_counter()
            response = client.get(target)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            assert response.status_code == 200, (target, response.status_code)
        print(f"{name:22} queries {len(statements):3}  cpu p50 {common.percentile(cpu, 50):6.1f} ms  mean {sum(cpu) / len(cpu):6.1f}"
              f"  |  wall p50 {common.percentile(wall, 50):6.1f} p95 {common.percentile(wall, 95):6.1f} ms"
              f"  bytes {len(response.content)}")
        if name == args.explain:
            with connection.cursor() as cursor:
                for sql in statements:
                    if not sql.lstrip().upper().startswith("SELECT"):
                        print("--", sql[:200])
                        continue
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS off) " + sql)
                    plan = [r[0] for r in cursor.fetchall()]
                    print(f"-- {plan[-1].strip()}  {sql[:300]}")
        if name == args.cprofile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.requests):
                client.get(url())
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(45)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue())
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
