"""`make run` without DATABASE_URL/REDIS_URL: one uvicorn process serving HTTP and websockets,
SQLite, Celery eager, and the beat schedule run by a thread of this same process."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger("omnicenter.embedded")


def run_schedule(stop: threading.Event) -> None:
    """The Celery beat schedule, in-process. Started once: there is no autoreloader here.

    Tasks are looked up on our Celery app itself (`celery.current_app` in a new thread is Celery's
    bare default app), after importing every app's tasks module as a worker does at start: a task
    module nothing else imported (omnicenter.tasks) would otherwise be unknown."""
    from omnicenter.celery import app

    app.loader.import_default_modules()

    schedule = settings.CELERY_BEAT_SCHEDULE
    next_run = {name: time.monotonic() + float(entry["schedule"]) for name, entry in schedule.items()}
    while not stop.wait(1.0):
        now = time.monotonic()
        for name, entry in schedule.items():
            if now >= next_run[name]:
                next_run[name] = now + float(entry["schedule"])
                try:
                    app.tasks[entry["task"]].apply()
                except Exception:
                    logger.exception("periodic task %s failed", name)


class Command(BaseCommand):
    help = "Run Omnicenter in the embedded mode (SQLite, in-memory channel layer, in-process tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="do not load demo data")

    def handle(self, *args, host: str, port: int, no_demo: bool, **options):
        if not settings.EMBEDDED:
            raise CommandError("DATABASE_URL/REDIS_URL are set: use `manage.py run_production`.")
        import uvicorn

        call_command("migrate", interactive=False, verbosity=0)
        call_command("compilemessages_if_needed")
        if not no_demo:
            call_command("demo_data")
        self.stdout.write(self.style.SUCCESS(f"Omnicenter (embedded mode) on http://{host}:{port}/app/"))
        stop = threading.Event()
        threading.Thread(target=run_schedule, args=(stop,), name="beat", daemon=True).start()
        try:
            uvicorn.run("omnicenter.asgi:application", host=host, port=port, lifespan="off", log_level="info")
        finally:
            stop.set()
