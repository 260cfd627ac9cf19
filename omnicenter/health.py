"""`GET /healthz`: database, Redis, workers and the inbound backlog, as JSON."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

WORKER_STALE_AFTER = timedelta(minutes=2)


def _redis_state() -> str:
    if not settings.REDIS_URL:
        return "not_configured"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError:
        return "down"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    from channels_inbound.models import InboundEvent
    from omnicenter.models import Heartbeat

    body: dict = {"mode": "embedded" if settings.EMBEDDED else "production"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        body["database"] = "ok"
    except Exception:
        body["database"] = "down"
        body["redis"] = _redis_state()
        return JsonResponse(body, status=503)
    body["redis"] = _redis_state()

    now = timezone.now()
    if settings.CELERY_TASK_ALWAYS_EAGER:
        body["workers"] = {"state": "in_process"}
    else:
        beat = Heartbeat.objects.filter(name="worker").first()
        age = (now - beat.at).total_seconds() if beat else None
        state = "ok" if beat and now - beat.at < WORKER_STALE_AFTER else ("stale" if beat else "unknown")
        body["workers"] = {"state": state, "last_heartbeat_age_seconds": round(age, 1) if age is not None else None}

    waiting = InboundEvent.objects.filter(
        status__in=[InboundEvent.Status.RECEIVED, InboundEvent.Status.PROCESSING, InboundEvent.Status.FAILED]
    )
    aggregate = waiting.aggregate(oldest=Min("received_at"))
    body["inbound"] = {
        "waiting": waiting.count(),
        "oldest_age_seconds": round((now - aggregate["oldest"]).total_seconds(), 1) if aggregate["oldest"] else None,
        "dead": InboundEvent.objects.filter(status=InboundEvent.Status.DEAD).count(),
    }
    return JsonResponse(body, status=200)
