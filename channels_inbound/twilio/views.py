"""Twilio webhooks (`/webhooks/twilio/<key>/...`) and the agents' voice access tokens.

A webhook view checks the signature, stores the request as an InboundEvent with an idempotent id
and answers at once; the worker does the rest (calls.py, messaging.py). Voice requests that want
TwiML get it computed from the database (twiml.py); Twilio repeats them freely.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.twiml.messaging_response import MessagingResponse

from channels_inbound import registry, selectors, services
from channels_inbound.base import Rejected
from channels_inbound.models import Channel
from channels_inbound.twilio import twiml
from channels_inbound.twilio.messaging import STATUS_EVENT_PREFIX
from omnicenter import roles
from tickets.views import staff_required

MESSAGING = ("sms", "whatsapp")
VOICE = ("voice",)
# Voice hooks that only want TwiML (no fact to record) and those that are stored as events.
EVENT_IDS = {
    "": "call:{CallSid}",
    "menu": "call:{CallSid}:menu",
    "dial": "call:{CallSid}:dial",
    "answered": "call:{ParentCallSid}:answered:{CallSid}",
    "status": "call:{CallSid}:status:{SequenceNumber}",
    "callback": "call:{CallSid}:callback",
    "recording": "rec:{RecordingSid}:{RecordingStatus}",
    "transcription": "tr:{RecordingSid}:{TranscriptionStatus}",
    "client": "outcall:{CallSid}",
}
HOOKS = {"menu", "dial", "wait", "leave", "options", "voicemail", "recorded", "answered", "status", "recording",
         "transcription", "client"}


def _xml(response) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def _checked(request, key: str, kinds: tuple[str, ...]) -> Channel | HttpResponse:
    channel = selectors.channel_for_webhook(key, kinds=kinds)
    if channel is None:
        return HttpResponse(_("Unknown channel."), status=404, content_type="text/plain; charset=utf-8")
    try:
        registry.adapter_for(channel.kind).verify(request, channel)
    except Rejected as exc:
        services.channel_record_rejection(channel=channel, reason=exc.reason)
        return HttpResponse(_("Invalid signature."), status=exc.status, content_type="text/plain; charset=utf-8")
    return channel


def _params(request) -> dict:
    return {key: request.POST.get(key) for key in request.POST}


@csrf_exempt
@require_POST
def message(request, key: str):
    channel = _checked(request, key, MESSAGING)
    if isinstance(channel, HttpResponse):
        return channel
    payload = _params(request)
    sid = payload.get("MessageSid") or payload.get("SmsSid")
    if not sid or not payload.get("From"):
        return HttpResponse(_("MessageSid and From are required."), status=400, content_type="text/plain; charset=utf-8")
    services.inbound_event_store(channel=channel, external_id=sid, payload=payload)
    # Empty TwiML: no automatic answer (Twilio itself answers STOP/START/HELP).
    return _xml(MessagingResponse())


@csrf_exempt
@require_POST
def status(request, key: str):
    channel = _checked(request, key, MESSAGING)
    if isinstance(channel, HttpResponse):
        return channel
    payload = _params(request)
    sid = payload.get("MessageSid") or payload.get("SmsSid")
    state = payload.get("MessageStatus") or payload.get("SmsStatus")
    if not sid or not state:
        return HttpResponse(_("MessageSid and MessageStatus are required."), status=400, content_type="text/plain; charset=utf-8")
    services.inbound_event_store(channel=channel, external_id=f"{STATUS_EVENT_PREFIX}{sid}:{state}", payload=payload)
    return HttpResponse(status=204)


def _store(channel: Channel, hook: str, payload: dict) -> None:
    pattern = EVENT_IDS.get(hook)
    if pattern is None:
        return
    values = {**payload}
    if hook == "status":
        values.setdefault("SequenceNumber", payload.get("CallStatus", ""))
    try:
        external_id = pattern.format(**values)
    except KeyError:
        return
    services.inbound_event_store(channel=channel, external_id=external_id, payload=payload, headers={"hook": hook})


@csrf_exempt
@require_POST
def voice(request, key: str, hook: str = ""):
    if hook and hook not in HOOKS:
        return HttpResponse(status=404)
    channel = _checked(request, key, VOICE)
    if isinstance(channel, HttpResponse):
        return channel
    params = _params(request)
    language = (request.GET.get("lang") or twiml.caller_language(channel, twiml._e164(params.get("From", ""))))[:2]
    if hook == "client":
        user = _agent(params.get("From", ""))
        if user is None:
            services.channel_record_rejection(channel=channel, reason="client call from an unknown agent")
            return HttpResponse(status=403)
        if params.get("CallSid") and not params.get("To", "").startswith("queue:"):
            _store(channel, "client", params)
        return _xml(twiml.client_call(channel, params, user))
    if not params.get("CallSid"):
        return HttpResponse(_("CallSid is required."), status=400, content_type="text/plain; charset=utf-8")
    if hook == "options" and params.get("Digits") == twiml.CALLBACK_DIGIT:
        _store(channel, "callback", params)
    else:
        _store(channel, hook, params)
    if hook in ("answered", "status", "recording", "transcription"):
        return HttpResponse(status=204)
    builders = {
        "": lambda: twiml.incoming(channel, params),
        "menu": lambda: twiml.menu_choice(channel, params, language),
        "dial": lambda: twiml.after_dial(channel, params, language),
        "wait": lambda: twiml.wait(channel, params, language),
        "leave": lambda: twiml.leave(channel),
        "options": lambda: twiml.options(channel, params, language),
        "voicemail": lambda: twiml.voicemail(channel, language),
        "recorded": lambda: twiml.recorded(channel, language),
    }
    return _xml(builders[hook]())


def _agent(client: str):
    from channels_inbound.twilio.calls import _agent_id
    from omnicenter.models import User

    user_id = _agent_id(client)
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    return user if user is not None and roles.is_agent(user) else None


def voice_channel_for_tokens(key: str = "") -> Channel | None:
    channels = Channel.objects.filter(kind="voice", is_active=True).order_by("pk")
    if key:
        channels = channels.filter(key=key)
    return next((c for c in channels if c.settings.get("api_key_sid") and c.settings.get("twiml_app_sid")
                 and c.secret("api_key_secret")), None)


@require_GET
@staff_required
def voice_token(request):
    """An access token for the agent's browser (Twilio Voice JS SDK): incoming calls to
    `agent-<id>` and outgoing calls through the channel's TwiML App. Agents only."""
    channel = voice_channel_for_tokens(request.GET.get("channel", ""))
    if channel is None:
        return JsonResponse({"detail": _("No voice channel is set up for browser calling.")}, status=404)
    identity = twiml.client_identity(request.user.pk)
    ttl = settings.TWILIO_VOICE_TOKEN_TTL
    token = AccessToken(channel.settings["account_sid"], channel.settings["api_key_sid"], channel.secret("api_key_secret"),
                        identity=identity, ttl=ttl)
    token.add_grant(VoiceGrant(outgoing_application_sid=channel.settings["twiml_app_sid"], incoming_allow=True))
    # The agent's browser can take calls from now on: callers of their teams ring it (twiml.ready_agents).
    cache.set(twiml.READY_KEY.format(request.user.pk), time.time(), timeout=ttl)
    # Callers wait in their team's queue when nobody was ready; an agent takes the next one from there.
    queues = [{"team": team.pk, "name": team.name} for team in request.user.teams.order_by("name")]
    response = JsonResponse({"token": token.to_jwt(), "identity": identity, "channel": channel.key, "ttl": ttl,
                             "queues": queues})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_required
def whatsapp_template_form(request, ticket_id: int):
    """The ticket panel's template form: Content SID plus `key=value` lines."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from channels_inbound.twilio import api as twilio_api
    from channels_inbound.twilio import messaging
    from omnicenter.errors import DomainError
    from tickets.selectors import ticket_for_agent

    ticket = ticket_for_agent(request.user, ticket_id)
    variables = {}
    for line in request.POST.get("variables", "").splitlines():
        key, sep, value = line.partition("=")
        if line.strip():
            variables[key.strip()] = value.strip() if sep else ""
    form = twilio_api.TemplateSerializer(data={"content_sid": request.POST.get("content_sid", "").strip(), "variables": variables})
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("ticket-detail", ticket_id=ticket.pk)
    try:
        last = twilio_api.whatsapp_target(ticket)
        messaging.template_send(ticket=ticket, by=request.user, channel=last.channel, identity=last.identity,
                                content_sid=form.validated_data["content_sid"], variables=form.validated_data["variables"])
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The template is on its way."))
    return redirect("ticket-detail", ticket_id=ticket.pk)


@require_POST
@staff_required
def callback_done(request, ticket_id: int, callback_id: int):
    """The agent called back and records the outcome; the request leaves "Callbacks due"."""
    from django.contrib import messages
    from django.shortcuts import get_object_or_404, redirect

    from channels_inbound.twilio import calls
    from tickets.models import CallbackRequest
    from tickets.selectors import ticket_for_agent

    ticket = ticket_for_agent(request.user, ticket_id)
    callback = get_object_or_404(CallbackRequest, pk=callback_id, ticket=ticket)
    outcome = request.POST.get("outcome", "").strip()
    if not outcome:
        messages.error(request, _("Say how the callback went."))
    elif calls.callback_complete(callback=callback, by=request.user, outcome=outcome):
        messages.success(request, _("Callback recorded."))
    return redirect("ticket-detail", ticket_id=ticket.pk)
