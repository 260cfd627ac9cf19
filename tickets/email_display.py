"""How an email's HTML is shown to an agent, decided at render time so the stored copy stays as received.

Remote images are blocked unless the agent asks for them for one message (they are tracking pixels as
often as pictures), inline `cid:` images point at the stored attachment, and quoted history and
signatures are split off so the page can show them collapsed. The input is the stored, sanitized HTML;
the output goes through `sanitize_html` once more, so nothing here can widen what reaches the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from html.parser import HTMLParser

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from tickets.attachments import safe_filename
from tickets.html import sanitize_html
from tickets.models import TimelineEntry

VOID_TAGS = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BLOCK_TAGS = {
    "blockquote", "div", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "ul",
}
# An image stands in the flattened text as one non-space character, so "is anything before this point?"
# sees it as content.
OBJECT_CHAR = "\ufffc"

_LINE = r"[^\n]{1,300}?"
# Reply headers that mail clients write above the quoted message, in the languages our customers write
# in, anchored to a line of their own so a sentence that merely contains "wrote:" does not match.
SEPARATORS = re.compile(
    "|".join([
        rf"^[^\S\n]*On\s{_LINE}(?:\n{_LINE})?\swrote:[^\S\n]*$",
        rf"^[^\S\n]*Am\s{_LINE}(?:\n{_LINE})?\sschrieb[^\n]{{0,200}}?:[^\S\n]*$",
        rf"^[^\S\n]*W dniu\s{_LINE}(?:\n{_LINE})?\s(?:pisze|napisał\(a\)|napisał|napisała):[^\S\n]*$",
        rf"^[^\S\n]*(?=[^\n]*\d){_LINE}(?:\n{_LINE})?\sнаписал(?:\(а\)|а)?:[^\S\n]*$",
        r"^[^\S\n]*-{2,}[^\S\n]*(?:Original Message|Ursprüngliche Nachricht|Oryginalna wiadomość|Исходное сообщение)[^\S\n]*-{2,}",
        rf"^[^\S\n]*(?:From|Von|Od|От):{_LINE}\n[^\S\n]*(?:Sent|Date|Gesendet|Datum|Wysłano|Data|Отправлено|Дата):",
        # The signature delimiter "-- " (RFC 3676); HTML rendering often loses the trailing space.
        r"^[^\S\n]*--[^\S\n]?$",
    ]),
    re.MULTILINE | re.IGNORECASE,
)


class Element:
    def __init__(self, tag: str, attrs: list[tuple[str, str | None]], parent: Element | None = None) -> None:
        self.tag = tag
        self.attrs = dict(attrs)
        self.children: list[Element | Text] = []
        self.parent = parent
        self.start = self.end = 0  # offsets in the flattened text

    def shell(self) -> Element:
        return Element(self.tag, list(self.attrs.items()))

    def adopt(self, children: list[Element | Text]) -> None:
        self.children = children
        for child in children:
            child.parent = self


class Text:
    def __init__(self, data: str, parent: Element) -> None:
        self.data = data
        self.parent = parent
        self.start = 0


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", [])
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, attrs, self.current)
        self.current.children.append(element)
        if tag not in VOID_TAGS:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, attrs, self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node is not self.root and node.tag != tag:
            node = node.parent
        if node is not None and node is not self.root:
            self.current = node.parent or self.root

    def handle_data(self, data: str) -> None:
        self.current.children.append(Text(data, self.current))


def _parse(markup: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    return builder.root


def _serialize(node: Element | Text) -> str:
    if isinstance(node, Text):
        return html.escape(node.data, quote=False)
    inner = "".join(_serialize(child) for child in node.children)
    if node.tag == "#root":
        return inner
    attrs = "".join(
        f' {name}="{html.escape(value, quote=True)}"' if value is not None else f" {name}"
        for name, value in node.attrs.items()
    )
    if node.tag in VOID_TAGS:
        return f"<{node.tag}{attrs}>"
    return f"<{node.tag}{attrs}>{inner}</{node.tag}>"


def _flatten(root: Element) -> tuple[str, list[Text], list[Element]]:
    """The text as a reader sees it (a line per block and <br>), recording where each node sits."""
    parts: list[str] = []
    texts: list[Text] = []
    blockquotes: list[Element] = []
    length = 0

    def emit(chunk: str) -> None:
        nonlocal length
        parts.append(chunk)
        length += len(chunk)

    def walk(node: Element, in_pre: bool) -> None:
        for child in node.children:
            if isinstance(child, Text):
                child.start = length
                texts.append(child)
                # Same length as the data, so offsets map straight back into the node.
                emit(child.data if in_pre else child.data.replace("\n", " ").replace("\r", " "))
                continue
            child.start = length
            if child.tag == "br":
                emit("\n")
            elif child.tag == "img":
                emit(OBJECT_CHAR)
            else:
                if child.tag in BLOCK_TAGS:
                    emit("\n")
                if child.tag == "blockquote":
                    blockquotes.append(child)
                walk(child, in_pre or child.tag == "pre")
                if child.tag in BLOCK_TAGS:
                    emit("\n")
            child.end = length

    walk(root, False)
    return "".join(parts), texts, blockquotes


def _split_text(text: Text, offset: int) -> Text:
    """Cut a text node at `offset` and return the part from there on (a new sibling)."""
    if offset <= 0:
        return text
    siblings = text.parent.children
    tail = Text(text.data[offset:], text.parent)
    text.data = text.data[:offset]
    siblings.insert(siblings.index(text) + 1, tail)
    return tail


def _lift(node: Element | Text, root: Element) -> Element | Text:
    """Start the quoted part at the outermost element the split point opens, not inside it."""
    while node.parent is not None and node.parent is not root:
        siblings = node.parent.children
        before = siblings[: siblings.index(node)]
        if any(not (isinstance(s, Text) and not s.data.strip()) for s in before):
            break
        node = node.parent
    return node


def _split(root: Element, node: Element | Text) -> Element:
    """Move `node` and everything after it in document order into a new tree, keeping the ancestors'
    tags around it; what stays in `root` is everything before."""
    parent = node.parent
    assert parent is not None
    index = parent.children.index(node)
    moved = parent.shell()
    moved.adopt(parent.children[index:])
    parent.children = parent.children[:index]
    while parent is not root:
        above = parent.parent
        assert above is not None
        index = above.children.index(parent)
        shell = above.shell()
        shell.adopt([moved, *above.children[index + 1:]])
        above.children = above.children[: index + 1]
        moved, parent = shell, above
    return moved


def _prune_trailing(node: Element) -> None:
    """Drop what is left dangling at the end of the message once the quote is gone: blank lines, rules,
    empty wrappers."""
    while node.children:
        last = node.children[-1]
        if isinstance(last, Text):
            if last.data.strip():
                return
            node.children.pop()
        elif last.tag in {"br", "hr"}:
            node.children.pop()
        elif last.tag == "img":
            return
        else:
            _prune_trailing(last)
            if last.children:
                return
            node.children.pop()


def _has_content(flat: str) -> bool:
    return bool(flat.strip())


def _split_quoted(root: Element) -> str:
    """Cut quoted history and signatures off `root`; returns them as HTML ("" when there are none)."""
    flat, texts, blockquotes = _flatten(root)
    quoted: list[str] = []
    cut = len(flat)

    match = next((m for m in SEPARATORS.finditer(flat) if _has_content(flat[: m.start()])), None)
    if match is not None:
        start = match.start() + len(match.group()) - len(match.group().lstrip())
        text = next(t for t in reversed(texts) if t.start <= start)
        node = _lift(_split_text(text, start - text.start), root)
        quoted.append(_serialize(_split(root, node)))
        cut = start

    # A quote followed by the customer's own words is part of an interleaved answer and stays; only
    # quotes at the end of the message (before any reply header found above) are history.
    outer = [b for b in blockquotes if not any(o.start <= b.start < o.end for o in blockquotes if o is not b)]
    for quote in outer:
        if quote.start >= cut or not _has_content(flat[: quote.start]):
            continue
        position, after = quote.end, []
        for other in outer:
            if quote.end <= other.start < cut:
                after.append(flat[position:other.start])
                position = max(position, other.end)
        after.append(flat[position:cut])
        if not _has_content("".join(after)):
            quoted.insert(0, _serialize(_split(root, _lift(quote, root))))
            break

    if quoted:
        _prune_trailing(root)
    return "".join(quoted)


def _inline_images(entry: TimelineEntry) -> dict[str, str]:
    """Content-ID (without <>) -> download URL, from the content-id -> filename map the parser keeps."""
    mapping = (entry.data or {}).get("inline") or {}
    if not isinstance(mapping, dict) or not mapping:
        return {}
    by_name = {attachment.filename: attachment for attachment in entry.attachments.all()}
    urls = {}
    for content_id, filename in mapping.items():
        if not isinstance(content_id, str) or not isinstance(filename, str):
            continue
        attachment = by_name.get(filename) or by_name.get(safe_filename(filename))
        if attachment is not None:
            urls[content_id.strip().strip("<>").lower()] = reverse("attachment-download", args=[attachment.public_id])
    return urls


def _rewrite_images(root: Element, *, entry: TimelineEntry, load_images: bool) -> int:
    """Point cid: images at their attachment and block the rest; returns how many remote ones were blocked."""
    inline = None
    blocked = 0
    stack: list[Element] = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            if isinstance(child, Text):
                continue
            if child.tag != "img":
                stack.append(child)
                continue
            src = (child.attrs.get("src") or "").strip()
            lowered = src.lower()
            if lowered.startswith(("http://", "https://", "//")):
                if load_images:
                    continue
                blocked += 1
                _placeholder(child, _("Remote image blocked"))
            elif lowered.startswith("cid:"):
                if inline is None:
                    inline = _inline_images(entry)
                url = inline.get(src[4:].strip().strip("<>").lower())
                if url:
                    child.attrs["src"] = url
                else:
                    _placeholder(child, _("Image not available"))
            else:
                # data: URIs (the sanitizer already drops them), relative paths, nothing at all.
                _placeholder(child, _("Image not available"))
    return blocked


def _placeholder(img: Element, reason: str) -> None:
    alt = (img.attrs.get("alt") or "").strip() or _("Image")
    img.attrs = {"alt": alt, "title": reason}


def render_entry_html(entry: TimelineEntry, *, load_images: bool) -> dict:
    """The entry's HTML ready for the page: {"html", "blocked_images", "quoted_html"}; html is "" when the
    entry has no HTML (the page shows the text then)."""
    if not entry.html:
        return {"html": "", "blocked_images": 0, "quoted_html": ""}
    root = _parse(sanitize_html(entry.html))
    blocked = _rewrite_images(root, entry=entry, load_images=load_images)
    quoted = _split_quoted(root)
    return {
        "html": _safe(_serialize(root)),
        "blocked_images": blocked,
        "quoted_html": _safe(quoted) if quoted else "",
    }


def _safe(markup: str) -> SafeString:
    return mark_safe(sanitize_html(markup))  # noqa: S308 - sanitized on this line


def entries_for_display(entries: Iterable[TimelineEntry], *, images_for: int | None) -> list[TimelineEntry]:
    """Attach `email_display` to entries with HTML; `images_for` is the one entry whose remote images load."""
    result = list(entries)
    for entry in result:
        if entry.html:
            entry.email_display = render_entry_html(entry, load_images=entry.pk == images_for)
    return result
