"""The floor: requests/s of a Django view that does one INSERT, on the same stack as Omnicenter.

Same server (gunicorn, 2 sync workers), same machine, same PostgreSQL, same HTTP client and
concurrency as the ingest benchmark, Django's default middleware, persistent database connections
like Omnicenter's production settings. Nothing useful can be faster on this stack, so the ingest
path is judged as a fraction of it, measured in the same run (`bench/ingest.py` does both).

    .venv/bin/python bench/floor.py --messages 5000 --concurrency 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

FLOOR_DB = "bench_floor"
# Its own directory on sys.path: bench/ itself holds email.py, which would shadow the standard library's
# `email` package in the floor's processes.
FLOOR_SITE = common.BENCH_DIR / "floor_site"


def floor_env(*, db_name: str = FLOOR_DB) -> dict[str, str]:
    env = common.production_env(db_name=db_name, var_dir=Path(tempfile.gettempdir()))
    env.update({
        "DJANGO_SETTINGS_MODULE": "floor_app.settings",
        "PYTHONPATH": str(FLOOR_SITE),
    })
    return env


def floor_prepare(env: dict[str, str], *, db_name: str = FLOOR_DB) -> None:
    common.db_recreate(db_name)
    common.run_checked([common.PYTHON, "-m", "django", "migrate", "--run-syncdb", "-v", "0"], env=env,
                       cwd=FLOOR_SITE)


def floor_start(stack: contextlib.ExitStack, env: dict[str, str], *, log_dir: Path) -> tuple[str, common.Service]:
    """Start the floor's gunicorn; returns the URL of its one view and the service."""
    port = common.free_port()
    service = common.start_service(stack, "floor-gunicorn", common.gunicorn_cmd("floor_app.wsgi:application", port),
                                   env=env, log_dir=log_dir, cwd=FLOOR_SITE)
    url = f"http://{common.HOST}:{port}/hit"
    common.wait_http(url, service=service)
    return url, service


def floor_measure(url: str, bodies: list[bytes], *, concurrency: int) -> common.LoadResult:
    headers = {"Content-Type": "application/json"}
    # Warm both workers (imports, the persistent database connection) before the measured run.
    common.run_async(common.closed_loop(url, bodies[:100], headers=headers, concurrency=concurrency))
    return common.run_async(common.closed_loop(url, bodies, headers=headers, concurrency=concurrency))


def sample_bodies(count: int, *, seed: int = 7) -> list[bytes]:
    """JSON bodies shaped like the `api` channel's inbound payload, for a standalone floor run."""
    rng = random.Random(seed)
    return [
        json.dumps({
            "id": f"floor-{i}",
            "from": {"name": f"Sender {i % 1000}", "email": f"sender{i % 1000}@example.com"},
            "text": " ".join(rng.choice(common.WORDS) for _ in range(40)),
        }).encode()
        for i in range(count)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="requests in the measured run")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {FLOOR_DB} database for inspection")
    args = parser.parse_args(argv)
    common.stop_on_sigterm()

    log_dir = common.ROOT / "var" / "bench" / "logs"
    env = floor_env()
    with contextlib.ExitStack() as stack:
        floor_prepare(env)
        if not args.keep_db:
            stack.callback(common.db_drop, FLOOR_DB)
        url, _service = floor_start(stack, env, log_dir=log_dir)
        result = floor_measure(url, sample_bodies(args.messages), concurrency=args.concurrency)
    summary = result.summary()
    print(json.dumps(summary, indent=2))
    print(f"floor: {result.rate:.0f} requests/s ({result.ok} of {result.sent} answered 2xx, "
          f"concurrency {args.concurrency})")
    return 0 if result.ok == result.sent else 1


if __name__ == "__main__":
    sys.exit(main())
