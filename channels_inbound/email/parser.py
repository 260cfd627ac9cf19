"""Raw RFC 5322 bytes to a `ParsedEmail`, surviving the mail that real mailers send.

The standard library's `email` package does the MIME work (policy.default, with compat32 as the
fallback when the modern policy trips over a broken message). Headers are decoded here rather than by
the policy: we read each header's raw bytes, decode 8-bit bytes with charset heuristics and decode
RFC 2047 encoded-words ourselves, because real mail mislabels charsets, splits multibyte characters
across encoded-words and puts raw koi8-r or UTF-8 bytes into headers.

Nothing in a mail is ever evaluated: subjects, bodies and filenames are data.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.policy
import functools
import mimetypes
import quopri
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from channels_inbound.base import InboundAttachment, NormalizedMessage


class UnparseableEmail(Exception):
    """The bytes are not a mail we can make sense of; the raw bytes are kept for an admin to see."""


@dataclass
class ParsedEmail:
    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    date: datetime | None = None
    text: str = ""
    html: str = ""
    attachments: list[InboundAttachment] = field(default_factory=list)
    inline: dict[str, str] = field(default_factory=dict)
    is_auto_reply: bool = False
    is_bounce: bool = False
    bounced_message_id: str = ""
    bounce_reason: str = ""
    #: the DSN's Action ("failed", "delayed", "delivered", ...) for any delivery-status report, even
    #: one that is not a bounce: a "delayed" notice is noise, not a failure
    dsn_action: str = ""
    ticket_token: str = ""
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Charsets

# Labels that say "I don't know" rather than naming a charset.
_UNKNOWN_CHARSETS = {"", "unknown", "unknown-8bit", "x-unknown", "x-user-defined", "default", "none", "8bit"}
# Labels mailers use where a superset is what they actually produce (as browsers do).
_CHARSET_UPGRADES = {
    "us-ascii": "cp1252", "ascii": "cp1252", "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030", "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "tis-620": "cp874", "windows-874": "cp874",
    "x-mac-cyrillic": "mac_cyrillic", "cp-1251": "cp1251", "win-1251": "cp1251", "cp-1250": "cp1250",
}
# Text codecs that transform rather than decode: a charset label must never select these.
_FORBIDDEN_CODECS = {"unicode_escape", "raw_unicode_escape", "undefined", "idna", "punycode", "mbcs", "oem"}
_LATIN_FAMILY = {"cp1252", "iso8859_1", "iso8859_15", "ascii"}

_POLISH = set("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")


def _codec(label: str | None) -> str | None:
    """The Python codec name for a charset label, or None if there is no (safe) text codec for it."""
    label = (label or "").strip().strip("\"'").lower()
    if label in _UNKNOWN_CHARSETS or len(label) > 40 or not re.fullmatch(r"[\w.:+-]+", label, re.ASCII):
        return None
    label = _CHARSET_UPGRADES.get(label, label)
    for candidate in (label, label.replace("-", ""), label.replace("_", "-")):
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        name = info.name.replace("-", "_")
        if name in _FORBIDDEN_CODECS or not getattr(info, "_is_text_encoding", True):
            return None
        return name
    return None


_CYRILLIC_CHARS = "".join(map(chr, range(0x400, 0x500)))
_CYRILLIC = re.compile("[\u0400-\u04ff]")
_CYRILLIC_LOWER = re.compile("[" + "".join(c for c in _CYRILLIC_CHARS if c.islower()) + "]")
# A whole word (as `\w+` splits them) that holds a Cyrillic letter: a match cannot start or end
# inside a word, since `\w*` takes the word's letters on either side of the Cyrillic one.
_CYRILLIC_WORD = re.compile(r"\w*[" + "".join(c for c in _CYRILLIC_CHARS if re.match(r"\w", c)) + r"]\w*")
_LATIN_LETTER = re.compile("[A-Za-z]")
_POLISH_LETTER = re.compile("[" + "".join(sorted(_POLISH)) + "]")


def _non_ascii(text: str) -> int:
    return len(text) - len(text.encode("ascii", "ignore"))


# Counted with regular expressions rather than character by character: these run on every body
# declared koi8-r or windows-1251 (to catch the two swapped), which made them a third of parsing.
def _cyrillic_score(text: str) -> tuple[float, float]:
    """(how Cyrillic the non-ASCII text looks, the share of lowercase among its Cyrillic letters)."""
    if text.isascii():
        return 0.0, 0.0
    cyrillic = len(_CYRILLIC.findall(text))
    if not cyrillic:
        return 0.0, 0.0
    with_cyrillic = _CYRILLIC_WORD.findall(text)
    mixed = sum(1 for w in with_cyrillic if _LATIN_LETTER.search(w))
    # Misread Polish gives single Cyrillic letters inside Latin words ("Dzieс"): not Cyrillic text.
    purity = 1 - (mixed / len(with_cyrillic) if with_cyrillic else 1)
    share = cyrillic / _non_ascii(text)
    return share * purity, len(_CYRILLIC_LOWER.findall(text)) / cyrillic


def _polish_score(text: str) -> float:
    non_ascii = _non_ascii(text)
    return len(_POLISH_LETTER.findall(text)) / non_ascii if non_ascii else 0.0


def _guess_8bit(data: bytes) -> tuple[str, str] | None:
    """Guess a single-byte charset for bytes that are not UTF-8: Cyrillic first, then Polish."""
    decoded: dict[str, str] = {}
    for name in ("cp1251", "koi8_r", "iso8859_2", "cp1250"):
        try:
            decoded[name] = data.decode(name)
        except UnicodeDecodeError:
            continue
    cyrillic = [(name, *_cyrillic_score(decoded[name])) for name in ("cp1251", "koi8_r") if name in decoded]
    cyrillic = [c for c in cyrillic if c[1] >= 0.8]
    if cyrillic:
        # Running text is mostly lowercase: cp1251 keeps lowercase at 0xE0-0xFF, koi8-r uppercase.
        name = max(cyrillic, key=lambda c: (c[2], c[1]))[0]
        return name, decoded[name]
    for name in ("iso8859_2", "cp1250"):
        if name in decoded and _polish_score(decoded[name]) >= 0.9:
            return name, decoded[name]
    return None


def _swap_cyrillic(codec: str, data: bytes, text: str) -> tuple[str, str] | None:
    """koi8-r declared as windows-1251 (or the other way round) reads as all-caps gibberish."""
    other = {"cp1251": "koi8_r", "koi8_r": "cp1251"}.get(codec)
    if other is None:
        return None
    try:
        alternative = data.decode(other)
    except UnicodeDecodeError:
        return None
    lower = _cyrillic_score(text)[1]
    alt_share, alt_lower = _cyrillic_score(alternative)
    if alt_share >= 0.8 and alt_lower >= 0.6 and lower <= 0.4:
        return other, alternative
    return None


def decode_bytes(data: bytes, declared: str | None, problems: list[str], *, what: str = "body",
                 hint: str | None = None) -> str:
    """Decode text whose label may be missing or wrong: declared, then UTF-8, then Cyrillic and
    Polish heuristics, then windows-1252 with replacement characters. Repairs go to `problems`."""
    if not data:
        return ""
    is_ascii = data.isascii()
    label = (declared or "").strip().strip("\"'").lower()
    codec = _codec(label)
    if label and codec is None and label not in _UNKNOWN_CHARSETS:
        problems.append(f"unknown charset {label} in {what}")
    if codec is not None:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None:
            if codec in _LATIN_FAMILY and not is_ascii:
                # Valid non-ASCII UTF-8 is vanishingly unlikely in real Latin-1 text.
                try:
                    utf8 = data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    problems.append(f"{what} declared {label} but is utf-8")
                    return utf8
                if label in ("us-ascii", "ascii"):
                    guessed = _guess_8bit(data)
                    if guessed:
                        problems.append(f"{what} declared {label} but has 8-bit bytes, read as {guessed[0]}")
                        return guessed[1]
            swapped = _swap_cyrillic(codec, data, text)
            if swapped:
                problems.append(f"{what} declared {label} but is {swapped[0]}")
                return swapped[1]
            return text
    if is_ascii:
        return data.decode("ascii")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if codec is not None:
            problems.append(f"{what} is not valid {label}, read as utf-8")
        return text
    candidates = [hint] if hint and _codec(hint) not in (None, "utf_8", *_LATIN_FAMILY) else []
    for candidate in candidates:
        try:
            text = data.decode(_codec(candidate) or "")
        except (UnicodeDecodeError, LookupError):
            continue
        if _cyrillic_score(text)[0] >= 0.8 or _polish_score(text) >= 0.9:
            return text
    guessed = _guess_8bit(data)
    if guessed:
        if label or what == "body":
            problems.append(f"{what} declared {label or 'no charset'}, read as {guessed[0]}")
        return guessed[1]
    problems.append(f"undecodable charset {label or 'none'} in {what}, used windows-1252 with replacement")
    return data.decode("cp1252", errors="replace")


# --------------------------------------------------------------------------------------------------
# Headers

_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
_ID = re.compile(r"<([^<>\s]+)>")
_TOKEN = re.compile(r"\+t-([0-9a-f]{32})@", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^[\s\[(]*(?:out of (?:the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|"
    r"автоответ|автоматический ответ|odpowied[źz] automatyczna|automatyczna odpowied[źz]|nieobecno[śs][ćc])",
    re.IGNORECASE,
)
_KNOWN_HEADERS = {
    "from", "to", "cc", "subject", "date", "message-id", "received", "mime-version", "content-type",
    "return-path", "sender", "reply-to", "delivered-to", "in-reply-to", "references", "x-mailer", "user-agent",
    "dkim-signature", "content-transfer-encoding", "x-original-to", "envelope-to", "auto-submitted",
}


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def _raw(msg: Message, name: str) -> str | None:
    """The first raw value of a header (8-bit bytes kept as surrogate escapes), unfolded."""
    name = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == name:
            return _unfold(value if isinstance(value, str) else str(value))
    return None


def _raw_all(msg: Message, name: str) -> list[str]:
    name = name.lower()
    return [_unfold(str(v)) for k, v in msg.raw_items() if k.lower() == name]


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in value)


def _decode_8bit(value: str, problems: list[str], what: str, hint: str | None) -> str:
    """A raw header value whose non-ASCII bytes arrived unencoded (surrogate escapes) to text."""
    if not _has_surrogates(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"raw 8-bit bytes in {what}")
        return decode_bytes(data, None, problems, what=what, hint=hint)


def _decode_word_payload(encoding: str, payload: str) -> bytes:
    if encoding.upper() == "B":
        payload = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        payload += "=" * (-len(payload) % 4)
        if len(payload) % 4 == 1:
            payload = payload[:-1]
        return base64.b64decode(payload) if payload else b""
    return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=False)


def decode_words(value: str, problems: list[str], what: str = "header", hint: str | None = None) -> str:
    """RFC 2047: decode encoded-words, joining adjacent ones of one charset before decoding (mailers
    split a multibyte character across two words)."""
    value = _decode_8bit(value, problems, what, hint)
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: tuple[str, bytearray] | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            out.append(decode_bytes(bytes(pending[1]), pending[0], problems, what=what, hint=hint))
            pending = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos:match.start()]
        if between.strip() or pending is None:
            flush()
            out.append(between)
        charset, encoding, payload = match.groups()
        try:
            data = _decode_word_payload(encoding, payload)
        except (binascii.Error, ValueError):
            problems.append(f"broken encoded-word in {what}")
            flush()
            out.append(match.group(0))
            pos = match.end()
            continue
        if pending is not None and pending[0].lower() == charset.lower():
            pending[1].extend(data)
        else:
            flush()
            pending = (charset, bytearray(data))
        pos = match.end()
    flush()
    out.append(value[pos:])
    result = "".join(out)
    if "=?" in result and re.search(r"=\?[^?\s]+\?[QqBb]\?", result):
        problems.append(f"broken encoded-word in {what}")
    return result


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; the rest of the control characters are noise in a header.
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)


def _header_text(msg: Message, name: str, problems: list[str], hint: str | None) -> str:
    raw = _raw(msg, name)
    if raw is None:
        return ""
    return re.sub(r"\s+", " ", _clean(decode_words(raw, problems, name, hint))).strip()


def _addresses(msg: Message, name: str, problems: list[str], hint: str | None) -> list[tuple[str, str]]:
    """(display name, lowercased address) pairs; display names are decoded after the split so that
    a comma inside an encoded name cannot split an address."""
    result: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in _raw_all(msg, name):
        text = _decode_8bit(raw, problems, name, hint)
        pairs = getaddresses([text])
        if not any("@" in addr for _, addr in pairs):
            pairs = _lenient_addresses(text)
        for display, addr in pairs:
            addr = addr.strip().strip("<>").strip().lower()
            if "@" not in addr or addr in seen or len(addr) > 320:
                continue
            seen.add(addr)
            display = re.sub(r"\s+", " ", _clean(decode_words(display, problems, name, hint))).strip().strip("\"'")
            result.append((display, addr))
    return result


def _lenient_addresses(text: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([text], strict=False)
    except TypeError:  # Python 3.12 before the strict flag was backported: it is lenient already
        return getaddresses([text])


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    found = _ID.findall(value)
    if not found:
        found = [t.strip("<>") for t in re.split(r"[\s,]+", value) if "@" in t]
    ids: list[str] = []
    for item in found:
        if item and item not in ids:
            ids.append(item)
    return ids


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    value = value.encode("ascii", "replace").decode("ascii")
    attempts = [value, re.sub(r"\([^)]*\)", "", value).strip(), re.sub(r"\s+[A-Za-z]{3,5}$", "", value.strip())]
    for attempt in attempts:
        try:
            parsed = parsedate_to_datetime(attempt)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if parsed is None:
            continue
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


# --------------------------------------------------------------------------------------------------
# Bodies


class _TextFromHtml(HTMLParser):
    _BLOCKS = {"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "pre", "hr", "ul", "ol", "section", "article", "header", "footer"}
    _SKIP = {"script", "style", "head", "title", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    converter = _TextFromHtml()
    converter.feed(html)
    converter.close()
    lines = [re.sub(r" {2,}", " ", line).strip() for line in "".join(converter.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    buffer = ""
    depth = None
    for line in text.split("\n"):
        quote = len(line) - len(line.lstrip(">"))
        body = line[quote:]
        if body.startswith(" "):
            body = body[1:]
        if buffer and quote != depth:
            out.append(">" * (depth or 0) + (" " if depth else "") + buffer)
            buffer = ""
        depth = quote
        if body.endswith(" ") and body != "-- ":
            buffer += body[:-1] if delsp else body
            continue
        out.append(">" * quote + (" " if quote else "") + buffer + body)
        buffer = ""
    if buffer:
        out.append(">" * (depth or 0) + (" " if depth else "") + buffer)
    return "\n".join(out)


_EXTENSIONS = {
    "application/ms-tnef": ".dat", "application/vnd.ms-tnef": ".dat", "text/calendar": ".ics",
    "message/rfc822": ".eml", "text/rfc822-headers": ".txt", "message/delivery-status": ".txt",
    "image/jpeg": ".jpg", "application/octet-stream": ".bin",
}
_MIMETYPES = mimetypes.MimeTypes()  # the built-in table only: the same names on every machine


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or _MIMETYPES.guess_extension(content_type) or ".bin"


def _strip_path(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].strip()


class _Walker:
    MAX_DEPTH = 40

    def __init__(self, problems: list[str], hint: str | None) -> None:
        self.problems = problems
        self.hint = hint
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[InboundAttachment] = []
        self.inline: dict[str, str] = {}
        self.dsn_texts: list[str] = []
        self.original_headers: list[Message] = []

    # The body of an alternative is the last (richest) child of each kind; attachments of every
    # child are kept (an html branch of multipart/related carries its images).
    def walk(self, part: Message, depth: int = 0) -> None:
        if depth > self.MAX_DEPTH:
            self.problems.append("MIME nesting too deep, inner parts dropped")
            return
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            self._message_attachment(part)
            return
        if content_type == "message/delivery-status":
            self.dsn_texts.append(self._delivery_status_text(part))
            return
        if part.is_multipart():
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            if part.get_content_subtype() == "alternative":
                self._alternative(children, depth)
            else:
                for child in children:
                    self.walk(child, depth + 1)
            return
        self._leaf(part, content_type)

    def _alternative(self, children: list[Message], depth: int) -> None:
        branches: list[_Walker] = []
        for child in children:
            branch = _Walker(self.problems, self.hint)
            branch.attachments = self.attachments
            branch.inline = self.inline
            branch.dsn_texts = self.dsn_texts
            branch.original_headers = self.original_headers
            branch.walk(child, depth + 1)
            branches.append(branch)
        texts = [b.texts for b in branches if b.texts]
        htmls = [b.htmls for b in branches if b.htmls]
        if texts:
            self.texts.extend(texts[-1])
        if htmls:
            self.htmls.extend(htmls[-1])

    def _filename(self, part: Message) -> str:
        try:
            name = part.get_filename() or ""
        except Exception:  # a broken RFC 2231 parameter: treat as unnamed
            self.problems.append("unreadable attachment filename")
            name = ""
        name = str(name)
        if _has_surrogates(name):
            name = decode_bytes(name.encode("utf-8", "surrogateescape"), None, self.problems, what="filename",
                                hint=self.hint)
        name = decode_words(name, self.problems, "filename", self.hint)
        return _clean(_strip_path(name))

    def _payload(self, part: Message) -> bytes:
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            return data
        payload = part.get_payload()
        return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""

    def _leaf(self, part: Message, content_type: str) -> None:
        disposition = part.get_content_disposition()
        filename = self._filename(part)
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            data = self._payload(part)
            declared = part.get_content_charset()
            if content_type == "text/html" and not declared:
                meta = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", data[:4096], re.IGNORECASE)
                declared = meta.group(1).decode("ascii") if meta else None
            text = _clean(decode_bytes(data, declared, self.problems, what=content_type, hint=self.hint))
            text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
            if content_type == "text/html":
                self.htmls.append(text)
            else:
                if (part.get_param("format") or "").lower() == "flowed":
                    text = _unflow(text, (part.get_param("delsp") or "").lower() == "yes")
                self.texts.append(text)
            return
        if content_type == "text/rfc822-headers":
            self._original_from_text(self._payload(part))
        self._add(filename, content_type, self._payload(part), part)

    def _add(self, filename: str, content_type: str, data: bytes, part: Message) -> None:
        index = len(self.attachments) + 1
        if not filename:
            filename = f"attachment-{index}{_extension(content_type)}"
        taken = {a.filename for a in self.attachments}
        if filename in taken:
            stem, dot, ext = filename.rpartition(".")
            stem, ext = (stem, dot + ext) if stem else (filename, "")
            counter = 2
            while f"{stem}-{counter}{ext}" in taken:
                counter += 1
            filename = f"{stem}-{counter}{ext}"
        self.attachments.append(InboundAttachment(filename=filename, content_type=content_type, data=data))
        content_id = _raw(part, "content-id")
        if content_id:
            cid = content_id.strip().strip("<>").strip()
            if cid:
                self.inline[cid] = filename

    def _message_attachment(self, part: Message) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            self.original_headers.append(inner)
            data = _as_bytes(inner)
        else:
            data = self._payload(part)
        filename = self._filename(part)
        if not filename and isinstance(inner, Message):
            subject = _header_text(inner, "subject", [], self.hint)
            subject = re.sub(r"[\\/]", "-", subject)[:100].strip(" .")
            filename = f"{subject}.eml" if subject else ""
        if filename and not filename.lower().endswith(".eml"):
            filename += ".eml"
        self._add(filename, "message/rfc822", data, part)

    def _delivery_status_text(self, part: Message) -> str:
        payload = part.get_payload()
        if isinstance(payload, list):
            return "\n\n".join(
                "\n".join(f"{k}: {_unfold(str(v))}" for k, v in block.raw_items())
                for block in payload if isinstance(block, Message)
            )
        return self._payload(part).decode("utf-8", "replace")

    def _original_from_text(self, data: bytes) -> None:
        # compat32's header parser registers defects instead of raising
        self.original_headers.append(HeaderParser(policy=email.policy.compat32).parsestr(
            data.decode("utf-8", "surrogateescape")))


def _as_bytes(msg: Message) -> bytes:
    for policy in (email.policy.compat32, email.policy.default):
        try:
            return msg.as_bytes(policy=policy)
        except Exception:  # noqa: S112 (regenerating a broken message: try the next policy, then text)
            continue
    return msg.as_string(policy=email.policy.compat32).encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------------------
# The message


class _ParseOnceHeaders(email.policy.EmailPolicy):
    """policy.default, except that a header value is parsed once, not at every fetch.

    policy.default builds a structured header object each time one is read, and the walk reads the
    Content-Type of every part several times (type, subtype, charset, parameters); that parsing was
    two fifths of the time spent on a mail. Header objects are immutable, so one parse of a given
    (name, value) serves every later read, in this mail or the next one with the same header.
    """

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name") or len(value) > 1000:
            return super().header_fetch_parse(name, value)
        return _parsed_header(name, value)


_POLICY = _ParseOnceHeaders()


@functools.lru_cache(maxsize=4096)
def _parsed_header(name: str, value: str):
    return email.policy.EmailPolicy.header_fetch_parse(_POLICY, name, value)



def _looks_like_mail(msg: Message) -> bool:
    return any(k.lower() in _KNOWN_HEADERS for k in msg)


def _body_charset_hint(msg: Message) -> str | None:
    for part in msg.walk() if msg.is_multipart() else [msg]:
        charset = part.get_param("charset") if isinstance(part, Message) else None
        if isinstance(charset, str) and _codec(charset) not in (None, "utf_8", *_LATIN_FAMILY):
            return charset
    return None


def _auto_reply(msg: Message, subject: str, from_email: str) -> bool:
    auto_submitted = (_raw(msg, "auto-submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated"):
        value = _raw(msg, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return True
    precedence = (_raw(msg, "precedence") or _raw(msg, "x-precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return True
    if "auto" in (_raw(msg, "list-id") or "").lower():
        return True
    if from_email.split("@")[0] in ("mailer-daemon", "postmaster"):
        return True
    return bool(_AUTO_SUBJECT.search(subject))


def _dsn_fields(text: str) -> tuple[str, str, str]:
    """(action, status, diagnostic) from the per-recipient fields of a delivery-status report."""
    actions = [a.lower() for a in re.findall(r"^Action:\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)]
    action = "failed" if "failed" in actions else (actions[0] if actions else "")
    status = re.search(r"^Status:\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)
    diagnostic = re.search(r"^Diagnostic-Code:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
    reason = ""
    if diagnostic:
        reason = diagnostic.group(1).strip()
        kind, sep, rest = reason.partition(";")
        if sep and re.fullmatch(r"[A-Za-z-]+", kind.strip()):
            reason = rest.strip()
    return action, status.group(1) if status else "", re.sub(r"\s+", " ", reason)


# Bounces that are not delivery-status reports: plain-text notices from qmail, Exim and others.
_PLAIN_FAILED = re.compile(
    r"wasn't able to deliver your message|could not be delivered to one or more of its\s+recipients"
    r"|this is a permanent error|delivery to the following recipients? failed permanently"
    r"|delivery has failed to these recipients", re.IGNORECASE)
_PLAIN_DELAYED = re.compile(r"has not yet been delivered|delivery attempts will continue|delivery is delayed",
                            re.IGNORECASE)
# Where the notice stops and the copy of the original message (or its headers) starts.
_PLAIN_COPY = re.compile(r"^-{2,}\s*(Below this line is a copy of the message|This is a copy of the message"
                         r"|Original message|Undelivered message)[^\n]*$", re.IGNORECASE | re.MULTILINE)
_PLAIN_SMTP_REPLY = re.compile(r"(?:Remote host said:\s*)?([45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b.*|[45]\d\d .+)$",
                               re.MULTILINE)


def _plain_bounce(text: str) -> tuple[str, str, str]:
    """(action, reason, original Message-ID) from a plain-text bounce notice; action "" if it is none."""
    notice, copy = text, ""
    marker = _PLAIN_COPY.search(text)
    if marker:
        notice, copy = text[:marker.start()], text[marker.end():]
    if _PLAIN_FAILED.search(notice):
        action = "failed"
    elif _PLAIN_DELAYED.search(notice):
        action = "delayed"
    else:
        return "", "", ""
    replies = [m.group(1).strip() for m in _PLAIN_SMTP_REPLY.finditer(notice)]
    reason = replies[-1] if replies else ""
    original = re.search(r"^Message-ID:\s*(.+)$", copy, re.IGNORECASE | re.MULTILINE)
    ids = _ids(original.group(1)) if original else []
    return action, re.sub(r"\s+", " ", reason)[:500], ids[0] if ids else ""


def _parse(raw: bytes, policy: email.policy.Policy) -> ParsedEmail:
    msg = email.message_from_bytes(raw, policy=policy)
    if not _looks_like_mail(msg):
        raise UnparseableEmail("no mail headers found")
    problems: list[str] = []
    hint = _body_charset_hint(msg)
    parsed = ParsedEmail(problems=problems)

    ids = _ids(_raw(msg, "message-id"))
    parsed.message_id = ids[0] if ids else ""
    if not parsed.message_id:
        problems.append("missing Message-ID")
    parsed.in_reply_to = _ids(_raw(msg, "in-reply-to"))
    parsed.references = _ids(" ".join(_raw_all(msg, "references")))
    parsed.subject = _header_text(msg, "subject", problems, hint)

    senders = _addresses(msg, "from", problems, hint) or _addresses(msg, "sender", problems, hint)
    if senders:
        parsed.from_name, parsed.from_email = senders[0]
    else:
        problems.append("missing or unreadable From")
    parsed.to = [a for _, a in _addresses(msg, "to", problems, hint)]
    parsed.cc = [a for _, a in _addresses(msg, "cc", problems, hint)]
    parsed.reply_to = [a for _, a in _addresses(msg, "reply-to", problems, hint)]

    date_header = _raw(msg, "date")
    parsed.date = _parse_date(date_header)
    if parsed.date is None:
        received = _raw(msg, "received")
        parsed.date = _parse_date(received.rpartition(";")[2]) if received and ";" in received else None
        problems.append(("invalid Date" if date_header else "missing Date")
                        + (", used the Received time" if parsed.date else ""))

    walker = _Walker(problems, hint)
    walker.walk(msg)
    parsed.text = "\n\n".join(t.strip("\n") for t in walker.texts if t.strip())
    parsed.html = "\n".join(h for h in walker.htmls if h.strip())
    if not parsed.text and parsed.html:
        parsed.text = html_to_text(parsed.html)
    parsed.attachments = walker.attachments
    parsed.inline = walker.inline

    report_type = (msg.get_param("report-type") or "") if msg.get_content_type() == "multipart/report" else ""
    report_type = str(report_type).lower()
    is_daemon = parsed.from_email.split("@")[0] in ("mailer-daemon", "postmaster")
    if report_type == "delivery-status" or (walker.dsn_texts and is_daemon):
        action, status, diagnostic = _dsn_fields("\n\n".join(walker.dsn_texts))
        parsed.dsn_action = action
        # A "delayed" (or "delivered") notice is not a failure: never mark the original failed for it.
        parsed.is_bounce = action in ("failed", "")
        if parsed.is_bounce:
            parsed.bounce_reason = diagnostic or (f"Status {status}" if status else "")
            for original in walker.original_headers:
                found = _ids(_raw(original, "message-id"))
                if found:
                    parsed.bounced_message_id = found[0]
                    break
    elif is_daemon:
        action, reason, original_id = _plain_bounce(parsed.text)
        parsed.dsn_action = action
        parsed.is_bounce = action == "failed"
        if parsed.is_bounce:
            parsed.bounce_reason = reason
            parsed.bounced_message_id = next(
                (found[0] for original in walker.original_headers if (found := _ids(_raw(original, "message-id")))),
                original_id,
            )
    parsed.is_auto_reply = (
        parsed.is_bounce or bool(walker.dsn_texts) or report_type == "disposition-notification"
        or _auto_reply(msg, parsed.subject, parsed.from_email)
    )

    for address in [*parsed.to, *parsed.cc, *(a for h in ("delivered-to", "x-original-to", "envelope-to")
                                              for _, a in _addresses(msg, h, problems, hint))]:
        token = _TOKEN.search(address)
        if token:
            parsed.ticket_token = token.group(1).lower()
            break

    defects = sorted({type(d).__name__ for part in msg.walk() for d in getattr(part, "defects", [])})
    problems.extend(f"MIME defect: {name}" for name in defects)
    return parsed


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse one mail. Raises UnparseableEmail (and nothing else) for bytes that are not a mail."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise UnparseableEmail("empty message")
    raw = bytes(raw)
    try:
        return _parse(raw, _POLICY)
    except UnparseableEmail:
        raise
    except Exception as first:  # the modern policy trips over some broken headers; compat32 does not
        try:
            parsed = _parse(raw, email.policy.compat32)
        except UnparseableEmail:
            raise
        except Exception as exc:
            raise UnparseableEmail(f"{type(exc).__name__}: {exc}") from exc
        parsed.problems.insert(0, f"parsed with the compat32 fallback after {type(first).__name__}: {first}")
        return parsed


def to_normalized(parsed: ParsedEmail, *, raw_sha256: str) -> NormalizedMessage:
    from customers.identities import InvalidIdentity, claim

    if not parsed.from_email:
        raise UnparseableEmail("the mail has no sender address")
    try:
        sender = claim("email", parsed.from_email, display_name=parsed.from_name)
    except InvalidIdentity as exc:
        raise UnparseableEmail(f"the sender address is invalid: {exc}") from exc
    thread_keys: list[str] = []
    for message_id in [*parsed.in_reply_to, *parsed.references]:
        key = "msgid:" + message_id
        if key not in thread_keys:
            thread_keys.append(key)
    if parsed.ticket_token:
        thread_keys.append("token:" + parsed.ticket_token)
    return NormalizedMessage(
        provider_message_id=parsed.message_id or f"sha256:{raw_sha256}",
        sender=[sender],
        display_name=parsed.from_name,
        subject=parsed.subject,
        text=parsed.text,
        html=parsed.html,
        attachments=list(parsed.attachments),
        thread_keys=thread_keys,
        timestamp=parsed.date,
        is_auto_reply=parsed.is_auto_reply,
        data={"inline": dict(parsed.inline)} if parsed.inline else {},
    )
