"""Calls on the timeline (services). Each voice webhook is stored as an InboundEvent with an
idempotent id, and the worker applies it here:

| event id | from | does |
|---|---|---|
| `call:<CallSid>` | incoming call | opens the call entry (kind `call`) on the caller's ticket |
| `call:<CallSid>:menu` | IVR digit | records the choice, moves the ticket to the chosen team |
| `call:<CallSid>:dial` | Dial / Enqueue action | outcome `answered` or `no_answer` / `abandoned` |
| `call:<ParentCallSid>:answered:<CallSid>` | `<Client>` answered | who answered; assigns an unassigned ticket |
| `call:<CallSid>:status:<SequenceNumber>` | call status callback | status, duration, missed calls |
| `call:<CallSid>:callback` | key pressed for a callback | a callback request on the ticket |
| `rec:<RecordingSid>:<RecordingStatus>` | recording callback | the recording, downloaded by the worker |
| `tr:<RecordingSid>:<TranscriptionStatus>` | transcription callback | text, or "transcription unavailable" |

Events of one call can be processed in any order: whichever comes first opens the entry, and
every step only adds facts to `entry.data["call"]` under a row lock.
"""

from __future__ import annotations

from datetime import UTC

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_inbound.base import NormalizedMessage
from channels_inbound.models import Channel, InboundEvent
from channels_inbound.twilio import twiml
from customers import identities
from customers.models import Identity
from omnicenter import events
from tickets.models import CallbackRequest, Ticket, TimelineEntry

FINAL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
CALLBACK_ACTION = "callback_requested"
CALLBACK_TAG = "callback"  # a visible label; "Callbacks due" itself lists open CallbackRequest rows


def _claim(channel: Channel, caller: str, call_sid: str):
    phone = twiml._e164(caller)
    if phone:
        return identities.claim(Identity.Kind.PHONE, phone)
    # A withheld number: a caller of their own, so that nothing ties unrelated anonymous calls together.
    return identities.claim(Identity.Kind.EXTERNAL, f"anonymous-call:{call_sid}", namespace=channel.key)


def _find(channel: Channel, sids: list[str]) -> TimelineEntry | None:
    """The call's entry, locked: inbound calls are kept under their CallSid, and an agent's
    browser call under its parent CallSid, which the child legs' callbacks quote."""
    sids = [sid for sid in sids if sid]
    return TimelineEntry.objects.select_for_update(no_key=True).filter(
        channel=channel, kind=TimelineEntry.Kind.CALL, provider_message_id__in=sids,
    ).order_by("pk").first() if sids else None


def call_entry(*, channel: Channel, call_sid: str, caller: str, called: str, event: InboundEvent | None) -> TimelineEntry:
    """The call's timeline entry, locked; opened (through the spine: customer, ticket) if new."""
    from channels_inbound.services import message_ingest

    found = TimelineEntry.objects.select_for_update(no_key=True).filter(
        channel=channel, direction=TimelineEntry.Direction.INBOUND, provider_message_id=call_sid,
    ).first()
    if found is not None:
        return found
    message = NormalizedMessage(
        provider_message_id=call_sid, sender=[_claim(channel, caller, call_sid)],
        text=_("Call from %(caller)s") % {"caller": twiml._e164(caller) or _("a withheld number")},
        data={"call": {"sid": call_sid, "from": caller, "to": called, "status": "ringing",
                       "started_at": timezone.now().isoformat()}},
    )
    entry = message_ingest(channel=channel, message=message, event=event)
    # The spine appends messages; a call is the same row with its own kind.
    TimelineEntry.objects.filter(pk=entry.pk).update(kind=TimelineEntry.Kind.CALL)
    return TimelineEntry.objects.select_for_update(no_key=True).get(pk=entry.pk)


def outbound_call_entry(*, channel: Channel, payload: dict) -> TimelineEntry | None:
    """An agent called a customer from the browser (click-to-call): an outbound call entry on the
    ticket they called from (when they may see it), else on the customer's latest open ticket."""
    from customers.services import customer_resolve
    from omnicenter.models import User
    from tickets.selectors import tickets_visible_to

    call_sid = payload.get("CallSid", "")
    existing = _find(channel, [call_sid])
    if existing is not None:
        return existing
    number = twiml._e164(payload.get("To", ""))
    user = User.objects.filter(pk=_agent_id(payload.get("From", "")) or 0).first()
    if not number or user is None:
        return None  # a queue pick-up, or nobody we know: no call to record here
    resolution = customer_resolve(claims=[identities.claim(Identity.Kind.PHONE, number)])
    visible = tickets_visible_to(user).filter(customer=resolution.customer)
    ticket_id = payload.get("ticket", "")
    ticket = visible.filter(pk=int(ticket_id)).first() if ticket_id.isdigit() else None
    if ticket is None:
        ticket = visible.filter(status__in=["new", "open", "pending"]).order_by("-last_message_at", "-pk").first()
    if ticket is None:
        ticket = Ticket.objects.create(subject=_("Call to %(number)s") % {"number": number},
                                       customer=resolution.customer, origin_channel=channel, team=channel.default_team,
                                       assignee=user, last_message_at=timezone.now())
    return TimelineEntry.objects.create(
        ticket=ticket, kind=TimelineEntry.Kind.CALL, direction=TimelineEntry.Direction.OUTBOUND, channel=channel,
        identity=resolution.identity, author_user=user, provider_message_id=call_sid,
        text=_("Call to %(number)s") % {"number": number},
        data={"call": {"sid": call_sid, "from": payload.get("From", ""), "to": number, "status": "initiated",
                       "started_at": timezone.now().isoformat(), "agent": user.pk}},
    )


def event_apply(event: InboundEvent) -> None:
    payload, channel = event.payload, event.channel
    hook = (event.headers or {}).get("hook", "")
    if hook == "client":
        entry = outbound_call_entry(channel=channel, payload=payload)
        if entry is not None:
            _touch(entry.ticket_id, {})
        return
    call_sid = payload.get("ParentCallSid") if hook == "answered" else payload.get("CallSid")
    if not call_sid:
        return
    entry = _find(channel, [call_sid, payload.get("ParentCallSid", "")])
    if entry is None:
        if (payload.get("From") or "").startswith("client:"):
            return  # a leg of an agent's browser call whose entry is not there (a queue pick-up)
        caller, called = payload.get("From", ""), "" if hook == "answered" else payload.get("To", "")
        entry = call_entry(channel=channel, call_sid=call_sid, caller=caller, called=called, event=event)
    caller = payload.get("From", "")
    call = dict(entry.data.get("call") or {})
    ticket_changes: dict = {}
    if hook == "menu":
        call["menu_digit"] = payload.get("Digits", "")
        option = next((o for o in channel.settings.get("menu") or [] if o["digit"] == call["menu_digit"]), None)
        if option is not None:
            call["team"] = option["team"]
            ticket_changes["team_id"] = option["team"]
    elif hook == "dial":
        if payload.get("DialCallStatus") == "completed" or payload.get("QueueResult") == "bridged":
            call["outcome"] = "answered"
        elif payload.get("QueueResult") == "hangup":
            call["outcome"] = "abandoned"
        elif call.get("outcome") != "answered":
            call["outcome"] = "no_answer"
    elif hook == "answered":
        user_id = _agent_id(payload.get("To", ""))
        if user_id is not None:
            from omnicenter.models import User

            user = User.objects.filter(pk=user_id).first()
            call["answered_by"] = user_id
            call["answered_by_name"] = (user.get_full_name() or user.username) if user else ""
            call["outcome"] = "answered"
            ticket = Ticket.objects.get(pk=entry.ticket_id)
            if ticket.assignee_id is None and user is not None:
                ticket_changes["assignee_id"] = user_id
    elif hook == "status":
        status = payload.get("CallStatus", "")
        call["status"] = status
        if payload.get("CallDuration"):
            call["duration"] = int(payload["CallDuration"])
        if status == "in-progress" and entry.direction == TimelineEntry.Direction.OUTBOUND:
            call["outcome"] = "answered"
        if status in FINAL_STATUSES:
            call["ended_at"] = timezone.now().isoformat()
            if call.get("outcome") not in ("answered", "voicemail", "callback"):
                if entry.direction == TimelineEntry.Direction.OUTBOUND:
                    call["outcome"] = "answered" if status == "completed" else "not_reached"
                elif status != "completed" or not call.get("outcome"):
                    call["outcome"] = "missed"
    elif hook == "callback":
        call["outcome"] = "callback"
        callback_request(ticket=Ticket.objects.get(pk=entry.ticket_id), number=twiml._e164(caller), source="ivr",
                         channel=channel, call_entry=entry)
    elif hook == "recording":
        _recording(entry, call, payload)
    elif hook == "transcription":
        _transcription(entry, call, payload)
    entry.data = {**entry.data, "call": call}
    entry.text = summary(entry.direction, call)
    entry.save(update_fields=["data", "text"])
    _touch(entry.ticket_id, ticket_changes)


OUTCOMES = {
    "answered": gettext_lazy("answered"), "no_answer": gettext_lazy("not answered"),
    "missed": gettext_lazy("missed"), "abandoned": gettext_lazy("caller hung up while waiting"),
    "voicemail": gettext_lazy("voicemail"), "callback": gettext_lazy("callback requested"),
    "not_reached": gettext_lazy("not reached"),
}


def summary(direction: str, call: dict) -> str:
    """The call as the timeline shows it: who, outcome, who answered, duration, transcription."""
    if direction == TimelineEntry.Direction.OUTBOUND:
        parts = [_("Call to %(number)s") % {"number": call.get("to", "")}]
    else:
        parts = [_("Call from %(caller)s") % {"caller": twiml._e164(call.get("from", "")) or _("a withheld number")}]
    if call.get("outcome"):
        parts.append(str(OUTCOMES.get(call["outcome"], call["outcome"])))
    if call.get("answered_by_name"):
        parts.append(_("answered by %(name)s") % {"name": call["answered_by_name"]})
    if call.get("duration"):
        parts.append(_("%(seconds)s s") % {"seconds": call["duration"]})
    text = ", ".join(parts)
    if call.get("transcription"):
        text += "\n" + _("Transcription: %(text)s") % {"text": call["transcription"]}
    elif call.get("transcription_state") == "unavailable" and (call.get("recording") or {}).get("state") != "absent":
        text += "\n" + _("Transcription unavailable; listen to the recording.")
    return text


def _agent_id(client: str) -> int | None:
    name = client.removeprefix("client:")
    if name.startswith("agent-") and name[6:].isdigit():
        return int(name[6:])
    return None


def _recording(entry: TimelineEntry, call: dict, payload: dict) -> None:
    from channels_inbound.twilio.messaging import _enqueue
    from channels_inbound.twilio.tasks import fetch_media

    status = payload.get("RecordingStatus", "")
    if status != "completed" or not payload.get("RecordingUrl"):
        call["recording"] = {"sid": payload.get("RecordingSid", ""), "state": "absent"}
        call["transcription_state"] = "unavailable"
        return
    duration = int(payload.get("RecordingDuration") or 0)
    call["outcome"] = call.get("outcome") if call.get("outcome") == "answered" else "voicemail"
    call["recording"] = {"sid": payload.get("RecordingSid", ""), "duration": duration, "state": "pending"}
    # Twilio only transcribes 2-120 s; for anything else say so now instead of waiting forever.
    if not twiml.TRANSCRIBE_MIN_SECONDS <= duration <= twiml.TRANSCRIBE_MAX_SECONDS or not (entry.channel.settings or {}).get("transcribe", True):
        call["transcription_state"] = "unavailable"
    elif call.get("transcription_state") not in ("completed", "unavailable"):
        call["transcription_state"] = "pending"
    media = list(entry.data.get("media") or [])
    url = payload["RecordingUrl"] + ".mp3"
    if not any(m["url"] == url for m in media):
        media.append({"url": url, "content_type": "audio/mpeg", "state": "pending", "recording": True})
    entry.data = {**entry.data, "media": media}
    entry_id = entry.pk
    transaction.on_commit(lambda: _enqueue(fetch_media, entry_id), robust=True)


def _transcription(entry: TimelineEntry, call: dict, payload: dict) -> None:
    text = (payload.get("TranscriptionText") or "").strip()
    if payload.get("TranscriptionStatus") == "completed" and text:
        call["transcription"] = text[:10000]
        call["transcription_state"] = "completed"
    else:
        # Twilio could not transcribe (language, noise, length): the recording stays, the text does not exist.
        call["transcription_state"] = "unavailable"


def _touch(ticket_id: int, changes: dict) -> None:
    ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
    for field, value in changes.items():
        setattr(ticket, field, value)
    ticket.version = F("version") + 1
    ticket.save(update_fields=["version", "updated_at", *changes])
    events.publish_ticket_event("timeline.appended", ticket)


def callback_request(*, ticket: Ticket, number: str, source: str, channel: Channel | None = None,
                     call_entry: TimelineEntry | None = None) -> CallbackRequest | None:
    """Someone asked to be called back (`source`: "ivr", "webchat", "portal"). The request is a
    `tickets.CallbackRequest` (the one model the portal's requests use too) due now, or at the next
    opening of the voice channel's business hours; the ticket gets the `callback` tag (the
    workspace's "Callbacks due" view), and the timeline an entry of kind `event` with
    `data = {"action": "callback_requested", "number", "source", "callback", "call_entry"}`.
    One request per call, whatever the number of repeated webhooks. None for a withheld number:
    nobody can call it back (the timeline still says the caller asked)."""
    if call_entry is not None:
        existing = TimelineEntry.objects.filter(
            ticket_id=ticket.pk, kind=TimelineEntry.Kind.EVENT, data__action=CALLBACK_ACTION,
            data__call_entry=call_entry.pk,
        ).first()
        if existing is not None:
            return CallbackRequest.objects.filter(pk=existing.data.get("callback") or 0).first()
    now = timezone.now()
    due = twiml.next_open(channel, now) if channel is not None and channel.kind == Channel.Kind.VOICE else now
    callback = None
    if number:
        callback = CallbackRequest.objects.create(
            ticket=ticket, phone=number[:20], preferred_at=due,
            note=(_("Asked on the phone menu") if source == "ivr" else source)[:300],
        )
        _tags_set(ticket, add=CALLBACK_TAG)
    TimelineEntry.objects.create(
        ticket_id=ticket.pk, kind=TimelineEntry.Kind.EVENT,
        text=_("The caller asked to be called back on %(number)s.") % {"number": number or _("a withheld number")},
        data={"action": CALLBACK_ACTION, "number": number, "phone": number, "source": source,
              "preferred_at": due.astimezone(UTC).isoformat(), "callback": callback.pk if callback else None,
              "call_entry": call_entry.pk if call_entry is not None else None},
    )
    if call_entry is None:  # a call's request is published with the call's own update
        _touch(ticket.pk, {})
    return callback


def _tags_set(ticket: Ticket, *, add: str = "", remove: str = "") -> None:
    from tickets.services import ticket_set_tags

    current = set(Ticket.objects.get(pk=ticket.pk).tags.values_list("name", flat=True))
    wanted = (current | {add} if add else current) - ({remove} if remove else set())
    if wanted != current:
        ticket_set_tags(ticket=ticket, tags=sorted(wanted), by=None)


def callback_complete(*, callback, by, outcome: str) -> bool:
    """The agent called back and says how it went: the request is done (the portal's
    `callback_mark_done`), the outcome is on the timeline, and once no request of the ticket is
    open the ticket leaves "Callbacks due"."""
    from tickets.portal.services import callback_mark_done

    if callback.done_at is not None:
        return False
    callback_mark_done(callback=callback, by=by)
    TimelineEntry.objects.create(
        ticket_id=callback.ticket_id, kind=TimelineEntry.Kind.EVENT, author_user=by,
        text=_("Called back %(number)s: %(outcome)s") % {"number": callback.phone, "outcome": outcome[:500]},
        data={"action": "callback_outcome", "callback": callback.pk, "outcome": outcome[:500]},
    )
    ticket = Ticket.objects.get(pk=callback.ticket_id)
    if not ticket.callbacks.filter(done_at__isnull=True).exists():
        _tags_set(ticket, remove=CALLBACK_TAG)
    return True
