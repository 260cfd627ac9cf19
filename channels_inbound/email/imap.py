"""IMAP polling of an email channel's mailbox, with the standard library's imaplib.

What must hold (issue 3), and how:
- One poll per mailbox at a time, whatever the number of workers or beat restarts: a lease on
  `MailboxState.lease_until`, taken with a conditional UPDATE on the database clock. No row lock and
  no transaction is ever held across a network call; a worker that dies leaves a lease that expires.
- Nothing lost, nothing twice: each message is stored as an `InboundEvent` (unique per channel and
  external id) and `last_uid` advances in the same short transaction, and only then is the message
  flagged \\Seen. Bodies are fetched with BODY.PEEK, so fetching never marks anything Seen.
- A changed UIDVALIDITY means the server renumbered the folder: start again from UID 1 and let the
  external id (the Message-ID, else a hash of the raw bytes) drop what was stored before.
- Each run is capped (`max_messages`), and a message above `max_bytes` is stored as an "oversized"
  event carrying only its headers, so it never blocks the mail behind it.

`mailbox_poll` must be called outside a transaction (a Celery task runs in autocommit), otherwise
"persist before flagging Seen" would flag messages whose rows are not yet committed.
"""

from __future__ import annotations

import base64
import hashlib
import imaplib
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from channels_inbound.models import Channel, MailboxState
from channels_inbound.services import inbound_event_store

logger = logging.getLogger(__name__)

DEFAULT_FOLDER = "INBOX"
DEFAULT_MAX_MESSAGES = 200


def _max_bytes() -> int:
    return int(getattr(settings, "IMAP_MAX_MESSAGE_BYTES", 25 * 1024 * 1024))


def _timeout() -> float:
    return float(getattr(settings, "IMAP_TIMEOUT", 30))


def _lease() -> timedelta:
    # Renewed after every message, so it only has to outlast the slowest single message.
    return getattr(settings, "IMAP_POLL_LEASE", timedelta(minutes=10))


@dataclass
class PollResult:
    stored: int = 0
    duplicates: int = 0
    oversized: int = 0
    errors: list[str] = field(default_factory=list)
    #: another poll of this mailbox holds the lease; nothing was done
    busy: bool = False
    #: the run stopped at `max_messages` with more mail waiting: poll again soon
    more: bool = False


class MailboxError(Exception):
    """A readable reason why the mailbox could not be reached, safe to show to an admin (no secrets)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class ImapSettings:
    host: str
    port: int
    security: str
    user: str
    folder: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImapSettings:
        security = (data.get("imap_security") or "ssl").lower()
        default_port = 993 if security == "ssl" else 143
        try:
            port = int(data.get("imap_port") or default_port)
        except (TypeError, ValueError):
            port = default_port
        return cls(
            host=(data.get("imap_host") or "").strip(), port=port, security=security,
            user=data.get("imap_user") or "", folder=data.get("imap_folder") or DEFAULT_FOLDER,
        )


# --- external ids -------------------------------------------------------------------------------

_ANGLE_ID = re.compile(r"<[^<>\s]+>")


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message (up to the first empty line), without parsing the body."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return raw[: min(ends)] if ends else raw


def message_id_of(headers: bytes) -> str:
    """The Message-ID from raw header bytes, or "" when there is none worth trusting."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(headers).get("Message-ID")
    except Exception:  # a header block broken beyond parsing: fall back to the hash
        return ""
    if value is None:
        return ""
    value = "".join(str(value).split())
    match = _ANGLE_ID.search(value)
    return match.group(0) if match else value


def email_external_id(raw: bytes, *, headers: bytes | None = None) -> str:
    """The dedup key of one email: "msgid:<id>" when it has a Message-ID, else "sha256:<hex of raw>".

    Shared by every way mail comes in (IMAP, import), so the same mail is stored once per channel.
    """
    message_id = message_id_of(header_block(raw) if headers is None else headers)
    if message_id:
        if len(message_id) > 240:  # InboundEvent.external_id holds 255 characters
            return "msgid-sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
        return "msgid:" + message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --- connecting ---------------------------------------------------------------------------------


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _folder_arg(name: str) -> str:
    """The folder name as an IMAP argument: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return _quoted("".join(out))


def _server_text(exc: BaseException, *secrets: str) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if isinstance(exc.args[0] if exc.args else None, bytes):
        text = exc.args[0].decode("utf-8", "replace")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text.strip()[:300]


def _connect(config: ImapSettings) -> imaplib.IMAP4:
    where = {"host": config.host, "port": config.port}
    if not config.host:
        raise MailboxError(_("No IMAP server is configured."))
    timeout = _timeout()
    try:
        if config.security == "ssl":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=ssl.create_default_context(), timeout=timeout
            )
        else:
            conn = imaplib.IMAP4(config.host, config.port, timeout=timeout)
    except socket.gaierror as exc:
        raise MailboxError(_("The IMAP server name “%(host)s” could not be resolved.") % where) from exc
    except ConnectionRefusedError as exc:
        raise MailboxError(_("The IMAP server %(host)s refused the connection on port %(port)s.") % where) from exc
    except TimeoutError as exc:
        raise MailboxError(_("Connecting to the IMAP server %(host)s:%(port)s timed out.") % where) from exc
    except ssl.SSLError as exc:
        raise MailboxError(
            _("The TLS handshake with %(host)s:%(port)s failed: %(reason)s")
            % {**where, "reason": getattr(exc, "verify_message", None) or exc.reason or exc}
        ) from exc
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(
            _("Could not connect to the IMAP server %(host)s:%(port)s: %(reason)s")
            % {**where, "reason": _server_text(exc)}
        ) from exc
    if config.security == "starttls":
        try:
            conn.starttls(ssl_context=ssl.create_default_context())
        except ssl.SSLError as exc:
            _close(conn)
            raise MailboxError(
                _("The TLS handshake with %(host)s:%(port)s failed: %(reason)s")
                % {**where, "reason": getattr(exc, "verify_message", None) or exc.reason or exc}
            ) from exc
        except (OSError, imaplib.IMAP4.error) as exc:
            _close(conn)
            raise MailboxError(
                _("The IMAP server %(host)s:%(port)s does not offer STARTTLS: %(reason)s")
                % {**where, "reason": _server_text(exc)}
            ) from exc
    return conn


def _login(conn: imaplib.IMAP4, config: ImapSettings, password: str) -> None:
    try:
        # imaplib quotes the password but not the user name.
        conn.login(_quoted(config.user), password)
    except (imaplib.IMAP4.error, UnicodeError) as exc:
        raise MailboxError(
            _("Login failed for user “%(user)s”: %(reason)s")
            % {"user": config.user, "reason": _server_text(exc, password) if isinstance(exc, imaplib.IMAP4.error)
               else _("the user name or password contains characters the server does not accept")}
        ) from exc


def _select(conn: imaplib.IMAP4, config: ImapSettings) -> tuple[int, int]:
    """SELECT the folder read-write; returns (UIDVALIDITY, number of messages)."""
    typ, data = conn.select(_folder_arg(config.folder), readonly=False)
    if typ != "OK":
        reason = data[0].decode("utf-8", "replace") if data and isinstance(data[0], bytes) else str(data)
        raise MailboxError(
            _("The folder “%(folder)s” does not exist or cannot be opened: %(reason)s")
            % {"folder": config.folder, "reason": reason[:300]}
        )
    _name, validity = conn.response("UIDVALIDITY")
    if not validity or validity[0] is None:
        raise MailboxError(_("The IMAP server did not report a UIDVALIDITY for “%(folder)s”.") % {"folder": config.folder})
    return int(validity[0]), int(data[0] or 0)


def _close(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except Exception:  # already broken; the socket is closed either way
        logger.debug("IMAP logout failed", exc_info=True)


def _open_mailbox(config: ImapSettings, password: str) -> tuple[imaplib.IMAP4, int, int]:
    conn = _connect(config)
    try:
        _login(conn, config, password)
        validity, count = _select(conn, config)
    except MailboxError:
        _close(conn)
        raise
    except (OSError, imaplib.IMAP4.error) as exc:
        _close(conn)
        raise MailboxError(
            _("The IMAP connection to %(host)s:%(port)s failed: %(reason)s")
            % {"host": config.host, "port": config.port, "reason": _server_text(exc, password)}
        ) from exc
    return conn, validity, count


def mailbox_test_connection(*, settings_data: dict, password: str) -> tuple[bool, str]:
    """The admin's "test connection": connect, log in, open the folder. Says exactly what failed."""
    config = ImapSettings.from_dict(settings_data)
    try:
        conn, _validity, count = _open_mailbox(config, password)
    except MailboxError as exc:
        return False, exc.message
    _close(conn)
    return True, _("Connected; the folder “%(folder)s” holds %(count)s messages.") % {
        "folder": config.folder, "count": count,
    }


# --- polling ------------------------------------------------------------------------------------

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


def _ok(typ: str, data: list, what: str) -> list:
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what}: {data!r}"[:300])
    return data


def _search_new(conn: imaplib.IMAP4, last_uid: int) -> list[int]:
    data = _ok(*conn.uid("SEARCH", "UID", f"{last_uid + 1}:*"), "UID SEARCH")
    # "n:*" also matches the highest UID when n is above it (RFC 3501 6.4.8): filter.
    return sorted(uid for uid in (int(x) for x in b" ".join(d for d in data if d).split()) if uid > last_uid)


def _sizes(conn: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    data = _ok(*conn.uid("FETCH", ",".join(map(str, uids)), "(RFC822.SIZE)"), "UID FETCH RFC822.SIZE")
    sizes = {}
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _fetch_literal(conn: imaplib.IMAP4, uid: int, item: str) -> bytes | None:
    """The literal of one FETCH data item for `uid`; None when the message is gone (expunged)."""
    data = _ok(*conn.uid("FETCH", str(uid), f"({item})"), f"UID FETCH {item}")
    for part in data:
        # Unsolicited FETCH responses (flag changes of other messages) may come along: match the UID.
        if isinstance(part, tuple) and b"BODY[" in part[0]:
            found = _UID.search(part[0])
            if found is None or int(found.group(1)) == uid:
                return part[1]
    return None


def _state_for(channel: Channel, folder: str) -> MailboxState:
    state = MailboxState.objects.filter(channel=channel, folder=folder).first()
    if state is None:
        state, _created = MailboxState.objects.get_or_create(channel=channel, folder=folder)
    return state


def _take_lease(state: MailboxState) -> bool:
    # The database's clock, so that workers on hosts with skewed clocks agree on expiry.
    return bool(
        MailboxState.objects.filter(pk=state.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=Now()))
        .update(lease_until=Now() + _lease())
    )


def _release_lease(state: MailboxState, error: str) -> None:
    try:
        MailboxState.objects.filter(pk=state.pk).update(lease_until=None, last_polled_at=Now(), last_error=error)
    except Exception:
        # The database is gone too; the lease expires by itself.
        logger.exception("could not release the lease of mailbox state %s", state.pk)


def mailbox_poll(
    *, channel: Channel, max_messages: int = DEFAULT_MAX_MESSAGES, max_bytes: int | None = None
) -> PollResult:
    """Fetch the new mail of the channel's IMAP folder into InboundEvents. Never raises for network errors."""
    config = ImapSettings.from_dict(channel.settings)
    max_bytes = _max_bytes() if max_bytes is None else max_bytes
    result = PollResult()
    state = _state_for(channel, config.folder)
    if not _take_lease(state):
        result.busy = True
        return result
    state.refresh_from_db()
    error = ""
    conn = None
    try:
        password = channel.secret("imap_password")
        conn, validity, _count = _open_mailbox(config, password)
        last_uid = state.last_uid
        if state.uidvalidity != validity:
            if state.uidvalidity is not None:
                logger.warning("mailbox %s/%s: UIDVALIDITY changed from %s to %s, resyncing",
                               channel.key, config.folder, state.uidvalidity, validity)
            last_uid = 0
            MailboxState.objects.filter(pk=state.pk).update(uidvalidity=validity, last_uid=0)
        uids = _search_new(conn, last_uid)
        result.more = len(uids) > max_messages
        uids = uids[:max_messages]
        sizes = _sizes(conn, uids) if uids else {}
        for uid in uids:
            size = sizes.get(uid, 0)
            base = {"uid": uid, "folder": config.folder, "uidvalidity": validity}
            if size > max_bytes:
                headers = _fetch_literal(conn, uid, "BODY.PEEK[HEADER]")
                if headers is None:
                    continue  # expunged meanwhile: nothing to keep
                external_id = email_external_id(headers, headers=headers)
                payload = {**base, "oversized": True, "size": size,
                           "headers_b64": base64.b64encode(headers).decode("ascii")}
            else:
                raw = _fetch_literal(conn, uid, "BODY.PEEK[]")
                if raw is None:
                    continue
                external_id = email_external_id(raw)
                payload = {**base, "raw_b64": base64.b64encode(raw).decode("ascii")}
            try:
                with transaction.atomic():
                    _event, created = inbound_event_store(channel=channel, external_id=external_id, payload=payload)
                    MailboxState.objects.filter(pk=state.pk).update(
                        last_uid=uid, uidvalidity=validity, messages_seen=F("messages_seen") + 1,
                        lease_until=Now() + _lease(),
                    )
            except Exception as exc:
                # Not stored, so not flagged Seen and last_uid stays before it: the next run retries it.
                logger.exception("mailbox %s/%s: could not store UID %s", channel.key, config.folder, uid)
                error = _("Could not store message UID %(uid)s: %(reason)s") % {
                    "uid": uid, "reason": f"{exc.__class__.__name__}: {exc}"[:300],
                }
                result.errors.append(error)
                result.more = False
                break
            if not created:
                result.duplicates += 1
            elif payload.get("oversized"):
                result.oversized += 1
            else:
                result.stored += 1
            _ok(*conn.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")
    except MailboxError as exc:
        error = exc.message
        result.errors.append(error)
        logger.warning("mailbox %s/%s: %s", channel.key, config.folder, error)
    except (OSError, imaplib.IMAP4.error) as exc:
        error = _("The IMAP connection to %(host)s:%(port)s failed: %(reason)s") % {
            "host": config.host, "port": config.port, "reason": _server_text(exc, channel.secret("imap_password")),
        }
        result.errors.append(error)
        result.more = False
        logger.warning("mailbox %s/%s: %s", channel.key, config.folder, error)
    finally:
        if conn is not None:
            _close(conn)
        _release_lease(state, error)
    return result
