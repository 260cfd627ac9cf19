"""Voice TwiML, built with the SDK's VoiceResponse from the channel's settings and the database.

Every function here only reads: Twilio repeats TwiML requests (retries, queue wait loops), and
each repetition gets the same answer for the same state. Decisions use data already in the
database (and the agents' device registrations in the cache), never a provider call.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from channels_inbound.models import Channel
from customers.models import Customer, Identity

#: `<Dial>` rings at most 10 `<Client>`s at once (Twilio's limit).
MAX_CLIENTS = 10
#: `<Record transcribe>` only transcribes recordings of 2 to 120 seconds.
TRANSCRIBE_MIN_SECONDS, TRANSCRIBE_MAX_SECONDS = 2, 120
SAY_LANGUAGES = {"en": "en-US", "pl": "pl-PL", "ru": "ru-RU", "de": "de-DE", "fr": "fr-FR", "es": "es-ES", "it": "it-IT"}
READY_KEY = "twilio:voice-ready:{}"
CALLBACK_DIGIT = "1"


def client_identity(user_id: int) -> str:
    return f"agent-{user_id}"


def hook_url(channel: Channel, name: str = "") -> str:
    if not name:
        return settings.PUBLIC_BASE_URL + reverse("twilio-voice", args=[channel.key])
    return settings.PUBLIC_BASE_URL + reverse("twilio-voice-hook", args=[channel.key, name])


def caller_customer(phone: str) -> Customer | None:
    identity = (
        Identity.objects.filter(kind=Identity.Kind.PHONE, value=phone, verified=True)
        .select_related("customer").first()
    )
    return identity.customer if identity else None


def caller_language(channel: Channel, phone: str) -> str:
    default = (channel.settings or {}).get("default_language") or "en"
    customer = caller_customer(phone) if phone else None
    return (customer.language if customer and customer.language else default)[:2].lower()


def _text(channel: Channel, name: str, language: str, fallback) -> str:
    texts = (channel.settings or {}).get(name) or {}
    default = (channel.settings or {}).get("default_language") or "en"
    if texts.get(language):
        return texts[language]
    if language == default and texts.get(default):
        return texts[default]
    with translation.override(language):
        built_in = str(fallback())
    return built_in or texts.get(default, "")


def _say(response, text: str, language: str) -> None:
    if text:
        response.say(text, language=SAY_LANGUAGES.get(language, "en-US"))


def is_open(channel: Channel, at: datetime | None = None) -> bool:
    rules = (channel.settings or {}).get("business_hours") or []
    if not rules:
        return True
    local = (at or timezone.now()).astimezone(ZoneInfo((channel.settings or {}).get("timezone") or "UTC"))
    now = local.strftime("%H:%M")
    return any(local.weekday() in rule["days"] and rule["start"][:5] <= now < rule["end"][:5] for rule in rules)


def next_open(channel: Channel, at: datetime | None = None) -> datetime:
    """When the channel is next within business hours: `at` itself when open now."""
    from datetime import time, timedelta

    at = at or timezone.now()
    rules = (channel.settings or {}).get("business_hours") or []
    if not rules or is_open(channel, at):
        return at
    zone = ZoneInfo((channel.settings or {}).get("timezone") or "UTC")
    local = at.astimezone(zone)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        starts = sorted(rule["start"][:5] for rule in rules if day.weekday() in rule["days"])
        for start in starts:
            hour, minute = (int(part) for part in start.split(":"))
            candidate = datetime.combine(day, time(hour, minute), tzinfo=zone)
            if candidate > local:
                return candidate
    return at


def ready_agents(team_id: int | None) -> list[int]:
    """Agents of the team whose browser registered a device recently, most recent first, capped at
    Twilio's ten clients per <Dial>. An agent whose workspace presence is away or offline (set by
    hand, or by inactivity) is not rung, even with a device still registered."""
    from omnicenter import roles
    from omnicenter.models import User

    users = (
        User.objects.filter(is_active=True).exclude(presence__status__in=["away", "offline"])
        .prefetch_related("groups")
    )
    if team_id is not None:
        users = users.filter(teams=team_id)
    users = [u for u in users if roles.is_agent(u)]
    seen = cache.get_many([READY_KEY.format(u.pk) for u in users])
    ready = sorted(((seen[READY_KEY.format(u.pk)], u.pk) for u in users if READY_KEY.format(u.pk) in seen), reverse=True)
    return [pk for _at, pk in ready[:MAX_CLIENTS]]


def incoming(channel: Channel, params) -> VoiceResponse:
    conf = channel.settings or {}
    caller = params.get("From", "")
    language = caller_language(channel, _e164(caller))
    response = VoiceResponse()
    _say(response, _text(channel, "greeting", language, lambda: _("Thank you for calling.")), language)
    if not is_open(channel):
        _say(response, _text(channel, "closed_message", language, lambda: _("We are closed right now.")), language)
        return _options(channel, language, response)
    menu = conf.get("menu") or []
    if menu:
        gather = Gather(num_digits=1, action=hook_url(channel, "menu") + f"?lang={language}", timeout=6)
        prompt = _text(channel, "menu_prompt", language, lambda: " ".join(
            _("For %(label)s, press %(digit)s.") % {"label": o.get("label") or o["digit"], "digit": o["digit"]} for o in menu))
        _say(gather, prompt, language)
        response.append(gather)
        response.redirect(hook_url(channel, "menu") + f"?lang={language}", method="POST")
        return response
    return route(channel, channel.default_team_id, language, response, caller=caller)


def menu_choice(channel: Channel, params, language: str) -> VoiceResponse:
    menu = (channel.settings or {}).get("menu") or []
    digit = params.get("Digits", "")
    option = next((o for o in menu if o["digit"] == digit), None)
    if option is None:
        # No key (or a wrong one): the default team takes the call.
        return route(channel, channel.default_team_id, language, VoiceResponse(), caller=params.get("From", ""))
    return route(channel, option["team"], language, VoiceResponse(), caller=params.get("From", ""))


def route(channel: Channel, team_id: int | None, language: str, response: VoiceResponse, *, caller: str) -> VoiceResponse:
    conf = channel.settings or {}
    agents = ready_agents(team_id)
    suffix = f"?lang={language}&team={team_id or ''}"
    if agents:
        dial = Dial(action=hook_url(channel, "dial") + suffix, timeout=conf.get("ring_timeout", 20), answer_on_bridge=True)
        customer = caller_customer(_e164(caller))
        for user_id in agents:
            client = dial.client(status_callback=hook_url(channel, "answered"), status_callback_event="answered")
            client.identity(client_identity(user_id))
            client.parameter(name="caller", value=_e164(caller) or caller)
            if customer is not None:
                client.parameter(name="customer_url", value=reverse("customer-detail", args=[customer.pk]))
        response.append(dial)
        return response
    # Nobody ready: the caller waits in the team's queue (agents take queued calls from the browser).
    response.enqueue(queue_name(channel, team_id), wait_url=hook_url(channel, "wait") + suffix, wait_url_method="POST",
                     action=hook_url(channel, "dial") + suffix)
    return response


def queue_name(channel: Channel, team_id: int | None) -> str:
    return f"{channel.key}-team-{team_id or 0}"


def wait(channel: Channel, params, language: str) -> VoiceResponse:
    conf = channel.settings or {}
    response = VoiceResponse()
    try:
        waited = int(params.get("QueueTime") or 0)
    except ValueError:
        waited = 0
    if waited >= conf.get("queue_max_wait", 180):
        response.leave()
        return response
    position = params.get("QueuePosition") or "1"
    gather = Gather(num_digits=1, action=hook_url(channel, "leave") + f"?lang={language}", timeout=1)
    _say(gather, _("All our agents are busy. You are number %(position)s in line. Press any key to leave a message "
                   "or to ask us to call you back.") % {"position": position}, language)
    response.append(gather)
    response.pause(length=15)
    return response


def leave(channel: Channel) -> VoiceResponse:
    response = VoiceResponse()
    response.leave()
    return response


def after_dial(channel: Channel, params, language: str) -> VoiceResponse:
    """The Dial (or Enqueue) action: hang up after a conversation, else offer voicemail or a callback."""
    answered = params.get("DialCallStatus") == "completed" or params.get("QueueResult") == "bridged"
    response = VoiceResponse()
    if answered or params.get("QueueResult") == "hangup":
        response.hangup()
        return response
    _say(response, _("Nobody could take your call."), language)
    return _options(channel, language, response)


def _options(channel: Channel, language: str, response: VoiceResponse) -> VoiceResponse:
    gather = Gather(num_digits=1, action=hook_url(channel, "options") + f"?lang={language}", timeout=5)
    _say(gather, _("To be called back, press %(digit)s. To leave a message, stay on the line.")
         % {"digit": CALLBACK_DIGIT}, language)
    response.append(gather)
    response.redirect(hook_url(channel, "voicemail") + f"?lang={language}", method="POST")
    return response


def options(channel: Channel, params, language: str) -> VoiceResponse:
    if params.get("Digits") == CALLBACK_DIGIT:
        response = VoiceResponse()
        _say(response, _("Thank you. We will call you back as soon as we can."), language)
        response.hangup()
        return response
    return voicemail(channel, language)


def voicemail(channel: Channel, language: str) -> VoiceResponse:
    conf = channel.settings or {}
    max_length = conf.get("voicemail_max_length", 120)
    response = VoiceResponse()
    _say(response, _("Please leave a message after the tone."), language)
    record = {
        "action": hook_url(channel, "recorded") + f"?lang={language}", "max_length": max_length, "play_beep": True,
        "recording_status_callback": hook_url(channel, "recording"), "recording_status_callback_event": "completed absent",
    }
    # Twilio transcribes only recordings of 2-120 s (in English); past that, keep the recording only.
    if conf.get("transcribe", True) and max_length <= TRANSCRIBE_MAX_SECONDS:
        record.update(transcribe=True, transcribe_callback=hook_url(channel, "transcription"))
    response.record(**record)
    return response


def recorded(channel: Channel, language: str) -> VoiceResponse:
    response = VoiceResponse()
    _say(response, _("Thank you for your message. Goodbye."), language)
    response.hangup()
    return response


def client_call(channel: Channel, params, user) -> VoiceResponse:
    """The TwiML App's Voice URL: an agent's browser calls a customer (click-to-call) or takes the
    next caller waiting in one of their teams' queues (`To=queue:<team id>`)."""
    from tickets.selectors import team_ids_of

    response = VoiceResponse()
    to = params.get("To", "")
    if to.startswith("queue:"):
        team = to.removeprefix("queue:")
        if not team.isdigit() or int(team) not in team_ids_of(user):
            response.say(_("You cannot take calls of that team."))
            return response
        dial = Dial()
        dial.queue(queue_name(channel, int(team)))
        response.append(dial)
        return response
    number = _e164(to)
    if not number:
        response.say(_("That is not a phone number."))
        return response
    dial = Dial(caller_id=(channel.settings or {}).get("phone_number"), answer_on_bridge=True)
    dial.number(number, status_callback=hook_url(channel, "status"),
                status_callback_event="initiated ringing answered completed")
    response.append(dial)
    return response


def _e164(value: str) -> str:
    from customers.identities import InvalidIdentity, normalize_phone

    try:
        return normalize_phone(value) if value and not value.startswith("client:") else ""
    except InvalidIdentity:
        return ""
