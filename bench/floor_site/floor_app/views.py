"""The floor's only view: parse the JSON body and store it with a single INSERT."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from floor_app.models import Hit


@csrf_exempt
@require_POST
def hit(request):
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"detail": "The body is not valid JSON."}, status=400)
    row = Hit.objects.create(payload=payload)
    return JsonResponse({"id": row.pk}, status=201)
