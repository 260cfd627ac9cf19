"""`make run` with DATABASE_URL and REDIS_URL: gunicorn (HTTP), uvicorn (websockets only), a Celery
worker and beat, as one command that stops together. Behind a reverse proxy use docker-compose.yml
(or route /ws/ to the websocket port yourself); without one, pages open their websocket on
the --ws-port port directly (WEBSOCKET_URL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def process_environment(name: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of one of the processes. The websocket process closes its database
    connections after each use: its consumers' work may run on many threads, and a connection kept
    per thread exhausted PostgreSQL's 100 at a few hundred sockets (docs/performance.md, web chat).
    WS_DB_CONN_MAX_AGE overrides that."""
    if name == "ws":
        return {**env, "DB_CONN_MAX_AGE": env.get("WS_DB_CONN_MAX_AGE", "0")}
    return env


#: uvicorn's options for the websocket process (docker-compose.yml's `ws` service passes the same).
#: No per-message deflate: each socket kept a zlib compressor and decompressor, about 50 KB of the
#: 100 KB an idle chat socket cost, to compress frames of a few hundred bytes (docs/performance.md).
WS_OPTIONS = ("--lifespan", "off", "--ws-per-message-deflate", "false")


class Command(BaseCommand):
    help = "Run every production process (web, websockets, worker, beat) and stop them together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--ws-port", type=int, default=None, help="default: port + 1")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument("--worker-concurrency", type=int, default=2)

    def handle(self, *args, host, port, ws_port, web_workers, worker_concurrency, **options):
        if settings.EMBEDDED:
            raise CommandError("Set both DATABASE_URL and REDIS_URL for production mode, or use `make run` without them.")
        ws_port = ws_port or port + 1
        call_command("migrate", interactive=False, verbosity=1)
        call_command("compilemessages_if_needed")
        # DEBUG is off here, so pages need the manifest that whitenoise's storage reads.
        call_command("collectstatic", interactive=False, verbosity=0)
        if os.environ.get("DEMO_DATA") == "1":
            call_command("demo_data")
        env = dict(os.environ)
        env.setdefault("WEBSOCKET_URL", f"ws://{host}:{ws_port}")
        bin_dir = os.path.dirname(sys.executable)
        commands = {
            "web": [os.path.join(bin_dir, "gunicorn"), "omnicenter.wsgi:application", "--bind", f"{host}:{port}",
                    "--workers", str(web_workers), "--access-logfile", "-"],
            "ws": [os.path.join(bin_dir, "uvicorn"), "omnicenter.asgi:application", "--host", host, "--port", str(ws_port),
                   *WS_OPTIONS],
            "worker": [sys.executable, "-m", "celery", "-A", "omnicenter", "worker", "--loglevel", "INFO",
                       "--concurrency", str(worker_concurrency)],
            "beat": [sys.executable, "-m", "celery", "-A", "omnicenter", "beat", "--loglevel", "INFO",
                     "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")],
        }
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        # On one host the web answers first: a busy worker only lets the durable queue grow, while a
        # slow webhook answer makes providers retry (docs/performance.md: p99 0.9 s -> 48 ms).
        def lower_priority() -> None:
            os.nice(10)

        processes = {
            name: subprocess.Popen(cmd, env=process_environment(name, env),  # noqa: S603
                                   preexec_fn=lower_priority if name in ("worker", "beat") else None)
            for name, cmd in commands.items()
        }
        self.stdout.write(self.style.SUCCESS(
            f"Omnicenter (production mode): http://{host}:{port}/app/ (websockets on port {ws_port})"
        ))
        stopping = False

        def stop(*_args):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        exit_code = 0
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping everything.")
                        exit_code = process.returncode or 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        if exit_code:
            raise SystemExit(exit_code)
