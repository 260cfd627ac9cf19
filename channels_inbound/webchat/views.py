"""HTTP side of the web chat: the widget script, visitor tokens, files, and the agent's typing hints."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import override
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from channels_inbound import selectors
from channels_inbound.webchat import mailing, services, tokens
from channels_inbound.webchat.adapter import normalize_origin
from omnicenter.errors import DomainError
from omnicenter.views import _client_ip
from tickets.models import Attachment

WIDGET_FILES = (settings.BASE_DIR / "static" / "webchat" / "widget.js", settings.BASE_DIR / "static" / "webchat" / "widget.css")
SCRIPT_MAX_AGE = 300  # the embed URL has no version in it: browsers revalidate (ETag) every 5 minutes


@cache
def _assets() -> tuple[str, str, str]:
    js, css = (path.read_text(encoding="utf-8") for path in WIDGET_FILES)
    return js, css, hashlib.sha256((js + css).encode()).hexdigest()[:12]


def _strings() -> dict[str, str]:
    return {
        "open": _("Open chat"), "close": _("Close chat"), "title": _("Chat with us"), "send": _("Send"),
        "placeholder": _("Write a message…"), "attach": _("Attach a file"), "name": _("Your name"),
        "email": _("Email"), "phone": _("Phone"), "start": _("Start chat"), "required": _("Please fill in this field."),
        "typing": _("typing…"), "seen": _("Seen"), "delivered": _("Delivered"), "sending": _("Sending…"),
        "failed": _("Not sent. Tap to retry."), "offline": _("Reconnecting…"), "leave": _("Leave a message"),
        "callback": _("Request a callback"), "time": _("Preferred time"), "request": _("Request"),
        "callback_done": _("Thank you. We will call you back."), "rate": _("Rate us"), "thanks": _("Thank you!"),
        "file_too_large": _("The file is too large."), "you": _("You"), "team": _("Support"),
        "menu": _("More options"), "transcript": _("Email me this conversation"),
        "transcript_sent": _("We are sending the conversation to %(email)s."),
        "verify": _("Confirm my email"), "verify_intro": _("We will email you a code to confirm your address."),
        "send_code": _("Send code"), "code": _("Code from the email"), "confirm": _("Confirm"),
        "code_sent": _("We sent a code to %(email)s. It works for %(minutes)s minutes."),
        "verified": _("Your email %(email)s is confirmed."), "resend": _("Send a new code"),
        "cancel": _("Cancel"),
    }


def _config(channel, base_url: str) -> dict:
    conf = channel.settings or {}
    ws_base = (settings.WEBSOCKET_URL or base_url).replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
    with override(conf.get("language") or None):
        strings = _strings()
    return {
        "key": channel.key, "base": base_url, "ws": f"{ws_base}/ws/widget/{channel.key}/",
        "wsFixed": bool(settings.WEBSOCKET_URL),
        # Checked again here: settings edited as raw JSON in the Django admin skip the serializer,
        # and the color goes into the widget's CSS.
        "color": conf["color"] if re.fullmatch(r"#[0-9a-fA-F]{6}", str(conf.get("color", ""))) else "#2563eb",
        "position": "left" if conf.get("position") == "left" else "right",
        "team": conf.get("team_name") or "", "photo": conf.get("team_photo_url") or "",
        "lang": conf.get("language") or "en",
        "prechat": {"name": "off", "email": "off", "phone": "off", **(conf.get("prechat") or {})},
        "maxChars": settings.WEBCHAT_MAX_MESSAGE_CHARS, "maxBytes": settings.WEBCHAT_ATTACHMENT_MAX_BYTES,
        "t": strings,
    }


@require_GET
def script(request, key: str):
    """`/widget/<key>.js`: the widget with this channel's look built in. Cacheable: an ETag from the
    widget's version and the channel's settings, so a settings change reaches visitors within
    SCRIPT_MAX_AGE and an unchanged script costs a 304."""
    channel = selectors.channel_for_webhook(key, kinds=("webchat",))
    if channel is None:
        return HttpResponse("/* unknown chat channel */", status=404, content_type="text/javascript")
    js, css, version = _assets()
    base_url = settings.PUBLIC_BASE_URL
    config = _config(channel, base_url)
    config["version"] = version
    body_config = json.dumps(config, sort_keys=True, ensure_ascii=False)
    etag = '"' + hashlib.sha256((version + body_config).encode()).hexdigest()[:24] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}", "Vary": "Accept-Encoding",
               "Access-Control-Allow-Origin": "*"}
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        # </ cannot close a script element from inside the JSON; the CSS travels as a JS string.
        prelude = "var __OC_WIDGET__=" + body_config.replace("</", "<\\/") + ";\nvar __OC_WIDGET_CSS__=" + json.dumps(css) + ";\n"
        response = HttpResponse(f'(function(){{"use strict";\n{prelude}{js}}})();\n', content_type="text/javascript; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response


def _cors(response, origin: str):
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "600"
    response["Vary"] = "Origin"
    return response


def _widget_post(request, key: str):
    """What every widget POST checks first: the channel, an allowed Origin (CORS preflight answered
    here), POST, and a JSON object body. (channel, body, origin), or the response to send."""
    channel = selectors.channel_for_webhook(key, kinds=("webchat",))
    if channel is None:
        return JsonResponse({"detail": _("Unknown channel.")}, status=404)
    try:
        origin = normalize_origin(request.headers.get("Origin", ""))
    except ValueError:
        origin = ""
    if origin not in set((channel.settings or {}).get("allowed_origins") or []):
        return JsonResponse({"detail": _("This site may not use this chat.")}, status=403)
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), origin)
    if request.method != "POST":
        return _cors(JsonResponse({"detail": _("Use POST.")}, status=405), origin)
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return _cors(JsonResponse({"detail": _("The body is not valid JSON.")}, status=400), origin)
    return channel, body, origin


@csrf_exempt
def session(request, key: str):
    """`POST /widget/<key>/session`: a visitor token for the widget, in the body (never in a URL).
    Body: {"token"?: the stored one, "user_id"?, "user_hash"?} (docs/channels/webchat.md)."""
    checked = _widget_post(request, key)
    if not isinstance(checked, tuple):
        return checked
    channel, body, origin = checked
    token = body.get("token") if isinstance(body.get("token"), str) else ""
    user_id = body.get("user_id") if isinstance(body.get("user_id"), (str, int)) else ""
    user_hash = body.get("user_hash") if isinstance(body.get("user_hash"), str) else ""
    if not user_id and tokens.read(token, channel_key=channel.key) is None and not services.rate_allow(
        f"session-ip:{_client_ip(request)}", settings.WEBCHAT_RATE_SESSIONS_IP
    ):
        return _cors(JsonResponse({"detail": _("Too many new chats from this address; wait a minute.")}, status=429), origin)
    try:
        visitor = services.visitor_session_open(channel=channel, token=token, user_id=str(user_id), user_hash=user_hash)
    except DomainError as exc:
        return _cors(JsonResponse({"detail": exc.message}, status=exc.status_code), origin)
    return _cors(JsonResponse({"token": tokens.issue(visitor), "verified": visitor.verified_user}), origin)


@require_GET
def file(request, token: str):
    """A file of the conversation, through a signed, expiring link the history handed out."""
    public_id = tokens.file_token_read(token)
    attachment = Attachment.objects.filter(public_id=public_id).first() if public_id else None
    if attachment is None:
        raise Http404
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type,
                            as_attachment=not attachment.content_type.startswith("image/"), filename=attachment.filename)
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@login_required
@require_POST
def agent_typing(request, ticket_id: int):
    """The ticket page's composer: "the agent is typing" (or, with state=seen, "the agent saw it")
    to the ticket's chat visitors. Only for a ticket the agent may see (404 otherwise)."""
    from tickets.selectors import ticket_for_agent

    ticket = ticket_for_agent(request.user, ticket_id)
    state = "seen" if request.POST.get("state") == "seen" else "typing"
    told = services.agent_typing(ticket=ticket, by=request.user, state=state)
    return JsonResponse({"visitors": told})


def _visitor_call(request, key: str):
    """Origin, CORS and token checks of the HTTP fallback: (channel, visitor, body, origin) or a response."""
    checked = _widget_post(request, key)
    if not isinstance(checked, tuple):
        return checked
    channel, body, origin = checked
    visitor = tokens.read(body.get("token"), channel_key=channel.key)
    if visitor is None:
        return _cors(JsonResponse({"type": "error", "code": "unauthorized",
                                   "message": _("The chat session is not valid; start a new one.")}, status=401), origin)
    return channel, visitor, body, origin


@csrf_exempt
def poll(request, key: str):
    """`POST /widget/<key>/poll` `{"token", "after"}`: the `ready` frame, for widgets whose network
    blocks websockets (they poll every few seconds)."""
    checked = _visitor_call(request, key)
    if isinstance(checked, HttpResponse):
        return checked
    channel, visitor, body, origin = checked
    services.visitor_polled(visitor=visitor)
    return _cors(JsonResponse(services.visitor_welcome(channel=channel, visitor=visitor, after=body.get("after") or "")), origin)


@csrf_exempt
def send(request, key: str):
    """`POST /widget/<key>/send` `{"token", "frame"}`: a `message`, `callback`, `delivered`, `read`,
    `transcript`, `email_code` or `email_confirm` frame without a websocket; answers with the frame
    the socket would have sent (ack, the request's answer, or error)."""
    checked = _visitor_call(request, key)
    if isinstance(checked, HttpResponse):
        return checked
    channel, visitor, body, origin = checked
    frame = body.get("frame") if isinstance(body.get("frame"), dict) else {}
    kind = frame.get("type")
    ref = frame.get("id") if isinstance(frame.get("id"), str) else ""
    with override((channel.settings or {}).get("language") or None):
        if kind in ("delivered", "read"):
            services.visitor_receipt(visitor=visitor, ids=frame.get("ids"), status=kind)
            return _cors(JsonResponse({"type": "ok"}), origin)
        if kind in mailing.REQUEST_FRAMES:
            try:
                answer = mailing.visitor_request(channel=channel, visitor=visitor, frame=frame, ip=_client_ip(request))
            except DomainError as exc:
                status = 429 if getattr(exc, "code", "") == "rate_limited" else 400
                return _cors(JsonResponse({"type": "error", "code": getattr(exc, "code", "invalid"), "ref": ref,
                                           "message": exc.message}, status=status), origin)
            return _cors(JsonResponse(answer), origin)
        if kind not in ("message", "callback"):
            return _cors(JsonResponse({"type": "error", "code": "bad_request", "message": _("Unknown frame type.")}, status=400), origin)
        group = services.visitor_group(channel.key, visitor.id)
        if not services.rate_allow_all([(f"v:{group}", settings.WEBCHAT_RATE_VISITOR),
                                        (f"ip:{_client_ip(request)}", settings.WEBCHAT_RATE_IP)]):
            return _cors(JsonResponse({"type": "error", "code": "rate_limited", "ref": ref,
                                       "message": _("You are sending messages too fast; wait a moment.")}, status=429), origin)
        try:
            if kind == "message":
                posted = services.visitor_message_post(
                    channel=channel, visitor=visitor, client_id=frame.get("id"), text=frame.get("text", ""),
                    profile=frame.get("profile"), attachments=frame.get("attachments"), page=frame.get("page", ""),
                )
            else:
                posted = services.visitor_callback_request(
                    channel=channel, visitor=visitor, client_id=frame.get("id"), phone=frame.get("phone"),
                    preferred_time=frame.get("time"), name=frame.get("name", ""),
                )
        except DomainError as exc:
            return _cors(JsonResponse({"type": "error", "code": getattr(exc, "code", "invalid"), "ref": ref,
                                       "message": exc.message}, status=400), origin)
    return _cors(JsonResponse({"type": "ack", "id": ref, "duplicate": posted.duplicate, "message": posted.frame}), origin)
