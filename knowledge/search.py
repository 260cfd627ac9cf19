"""Article search: PostgreSQL full text per language plus trigram typo tolerance; a plainer
substring search on SQLite (embedded mode).

PostgreSQL: each translation has a weighted ``search_vector`` (title A, tags and short text B,
body C) in its language's configuration (knowledge/languages.py), kept up to date by
``index_translations`` whenever a service saves a translation. A query matches through that vector
(``websearch_to_tsquery``: stemming, quoted phrases, ``-word``) or, for typos, through trigram word
similarity of the query to the title (``<%``, GIN ``gin_trgm_ops`` index). Titles that match come
first, then rank. Snippets are ``ts_headline`` of the page's rows only (it is the costly part).
"""

from __future__ import annotations

import re
import unicodedata

from django.db import connection
from django.db.models import BooleanField, Case, FloatField, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.utils.html import escape

from knowledge.languages import SEARCH_CONFIGS, search_config
from knowledge.models import Article, Translation

START, STOP = "\x02", "\x03"
HEADLINE_OPTIONS = f"StartSel={START}, StopSel={STOP}, MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter=\" … \""
MAX_QUERY = 200
# A query matching more articles than this ranks the title matches and the newest of the rest:
# ranking reads each candidate's whole vector, and nobody reads past page 15 of a help center.
RANK_LIMIT = 300
_WORD = re.compile(r"\w+", re.UNICODE)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


# A translation's configuration in SQL, from knowledge.languages (constants, never user input).
_CONFIG_CASE = "CASE t.language {} ELSE 'simple'::regconfig END".format(
    " ".join(f"WHEN '{language}' THEN '{config}'::regconfig" for language, config in SEARCH_CONFIGS.items()))


def index_translations(ids: list[int]) -> None:
    """Write the search entry of these translations (PostgreSQL only; a no-op elsewhere)."""
    if not ids or not is_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO knowledge_searchentry AS e (translation_id, article_id, language, search_title, title_vector, search_vector)
            SELECT t.id, t.article_id, t.language, t.search_title, to_tsvector(c.cfg, t.title),
                setweight(to_tsvector(c.cfg, t.title), 'A')
                || setweight(to_tsvector(c.cfg, coalesce(tags.names, '') || ' ' || t.short_text), 'B')
                || setweight(to_tsvector(c.cfg, t.body_text), 'C')
            FROM knowledge_translation t
            CROSS JOIN LATERAL (SELECT {_CONFIG_CASE} AS cfg) AS c
            LEFT JOIN LATERAL (
                SELECT string_agg(g.name, ' ') AS names FROM knowledge_article_tags at
                JOIN knowledge_tag g ON g.id = at.tag_id WHERE at.article_id = t.article_id
            ) AS tags ON true
            WHERE t.id = ANY(%s)
            ON CONFLICT (translation_id) DO UPDATE SET article_id = EXCLUDED.article_id, language = EXCLUDED.language,
                search_title = EXCLUDED.search_title, title_vector = EXCLUDED.title_vector,
                search_vector = EXCLUDED.search_vector
            """,  # noqa: S608 (constants of knowledge.languages only)
            [list(ids)],
        )


def fold(text: str) -> str:
    """Lowercase without diacritics (ł -> l, ё -> е), for trigram matching of titles. Done in
    Python for both the stored ``search_title`` and the query, so the two always agree and the
    query reaches PostgreSQL as a constant the trigram index can use."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("ł", "l"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def clean_query(q: str) -> str:
    return " ".join(q.split())[:MAX_QUERY]


def search(translations: QuerySet[Translation], *, q: str, language: str, any_word: bool = False,
           articles: QuerySet[Article] | None = None) -> QuerySet[Translation]:
    """The translations (already narrowed to what the reader may see) matching ``q`` in
    ``language``, best first. ``articles``: the articles ``translations`` is narrowed to
    (``selectors.readable_articles``); candidates are found among those, so pass it whenever it is
    known (without it the candidates are narrowed through ``translations`` itself, correct but
    slower on a large knowledge base)."""
    q = clean_query(q) if not any_word else " ".join(q.split())[:2000]
    translations = translations.filter(language=language)
    if not q:
        return translations.none()
    if is_postgres():
        if articles is None:
            articles = Article.objects.filter(pk__in=translations.values("article_id"))
        ids = ranked_ids(q=q, language=language, articles=articles, any_word=any_word)
        return in_order(translations, ids)
    return _search_fallback(translations, q, any_word)


def in_order(translations: QuerySet[Translation], ids: list[int]) -> QuerySet[Translation]:
    """These translations among ``ids``, in the order of ``ids`` (PostgreSQL)."""
    if not ids:
        return translations.none()
    position = RawSQL("array_position(%s::bigint[], knowledge_translation.id)", [ids])
    return translations.filter(pk__in=ids).annotate(search_position=position).order_by("search_position")


def _tsquery(language: str, q: str, *, any_word: bool = False) -> tuple[str, list]:
    """SQL for the query's tsquery. Polish has no stemmer: each word becomes a prefix of itself
    (``zamówienia`` -> ``zamowien:*``), which catches most of its inflected forms. ``any_word``
    (suggestions from a whole message): OR of the words instead of AND."""
    cfg = search_config(language)
    words = _WORD.findall(q.lower())[: 40 if any_word else 8]
    if language == "pl":
        terms = [f"{_stem(w)}:*" for w in words]
    elif any_word:
        terms = [w for w in words if len(w) > 2]
    else:
        return "websearch_to_tsquery(%s::regconfig, %s)", [cfg, q]
    if not terms:  # only short words ("Hi", "ok?"): to_tsquery would reject an empty query
        return "", []
    return "to_tsquery(%s::regconfig, %s)", [cfg, (" | " if any_word else " & ").join(terms)]


def ranked_ids(*, q: str, language: str, articles: QuerySet[Article], any_word: bool = False) -> list[int]:
    """PostgreSQL, one statement: ids of the translations in ``language`` of ``articles`` that
    match ``q``, best first, at most RANK_LIMIT. Three steps, so that a common word matching
    thousands of articles stays fast:

    1. title matches: the small ``title_vector`` (GIN) or the trigram index on folded titles
       (typos), newest first, at most RANK_LIMIT;
    2. if there is room, body matches from the full-text GIN index, newest first (the GIN bitmap
       answers the match without reading any vector). Matches are sorted first and checked
       against the readable articles one by one (``OFFSET 0`` keeps the sort below the check), so
       a common word costs about RANK_LIMIT primary-key probes, not a scan of every article;
    3. only these candidates are ranked: title matches first, then ``ts_rank_cd`` on the whole
       vector plus title similarity, then the most recently updated article.

    All of it reads ``knowledge_searchentry`` (narrow rows, vectors out of line) and
    ``knowledge_article``, never the wide translations table.
    """
    # Only constant SQL is formatted in; the query text always travels as a parameter.
    tsq, params = _tsquery(language, q, any_word=any_word)
    if not tsq:
        return []
    folded = fold(q)
    readable, readable_params = articles.order_by().values("pk").query.sql_with_params()
    sql = f"""
        WITH title AS MATERIALIZED (
            SELECT m.id, m.article_id FROM (
                SELECT e.translation_id AS id, e.article_id FROM knowledge_searchentry e
                WHERE e.language = %s AND (e.title_vector @@ {tsq} OR e.search_title %%> %s)
                ORDER BY e.translation_id DESC OFFSET 0
            ) m WHERE m.article_id IN ({readable}) LIMIT {RANK_LIMIT}
        ), body AS MATERIALIZED (
            SELECT m.id, m.article_id FROM (
                SELECT e.translation_id AS id, e.article_id FROM knowledge_searchentry e
                WHERE e.language = %s AND e.search_vector @@ {tsq} AND e.translation_id NOT IN (SELECT id FROM title)
                ORDER BY e.translation_id DESC OFFSET 0
            ) m WHERE m.article_id IN ({readable}) LIMIT {RANK_LIMIT}
        ), candidates AS (
            SELECT id, article_id FROM title
            UNION ALL (SELECT id, article_id FROM body ORDER BY id DESC LIMIT {RANK_LIMIT} - (SELECT count(*) FROM title))
        )
        SELECT e.translation_id FROM candidates c JOIN knowledge_searchentry e ON e.translation_id = c.id
        ORDER BY (e.title_vector @@ {tsq} OR %s <<%% e.search_title) DESC,
                 ts_rank_cd(e.search_vector, {tsq}, 1) + word_similarity(%s, e.search_title) DESC,
                 (SELECT a.updated_at FROM knowledge_article a WHERE a.id = c.article_id) DESC, c.id
    """  # noqa: S608
    all_params = [language, *params, folded, *readable_params,
                  language, *params, *readable_params,
                  *params, folded, *params, folded]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        return [row[0] for row in cursor.fetchall()]


def _stem(word: str) -> str:
    # A crude stand-in for stemming on SQLite: "заказы"/"заказа" and "orders" share their start.
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


def _search_fallback(translations: QuerySet[Translation], q: str, any_word: bool = False) -> QuerySet[Translation]:
    words = [_stem(w) for w in _WORD.findall(q.lower()) if not any_word or len(w) > 3][: 20 if any_word else 8]
    if not words:
        return translations.none()
    in_title = Q()
    anywhere = Q()
    for word in words:
        in_title &= Q(title__icontains=word)
        found = Q(title__icontains=word) | Q(body_text__icontains=word) | Q(short_text__icontains=word)
        if any_word:
            anywhere |= found
        else:
            translations = translations.filter(found)
    if any_word:
        translations = translations.filter(anywhere)
    return translations.annotate(
        title_hit=Case(When(in_title, then=Value(True)), default=Value(False), output_field=BooleanField()),
        rank=Value(0.0, output_field=FloatField()),
    ).order_by("-title_hit", "-article__updated_at", "pk")


def snippets(translations: list[Translation], *, q: str, language: str) -> dict[int, str]:
    """Highlighted excerpts of the body for these (already fetched) translations, by id: one
    ``headline`` statement on PostgreSQL; the plain excerpt (``snippet``) elsewhere, or when the
    query has no word to highlight ("?!")."""
    if not translations:
        return {}
    expression = headline(q=q, language=language)
    if expression is None:
        return {t.pk: snippet(t.body_text, q=q) for t in translations}
    found = Translation.objects.filter(pk__in=[t.pk for t in translations]).annotate(headline_text=expression)
    return {pk: snippet("", q=q, headline_text=text) for pk, text in found.values_list("pk", "headline_text")}


def translation_ids(articles: QuerySet[Article], *, q: str, language: str) -> list[int]:
    """Ids of the translations in ``language`` of ``articles`` matching ``q``, best first (at most
    RANK_LIMIT on PostgreSQL): what a paginated API needs, without a COUNT or a wide row."""
    q = clean_query(q)
    if not q:
        return []
    if is_postgres():
        return ranked_ids(q=q, language=language, articles=articles)
    found = _search_fallback(Translation.objects.filter(article__in=articles, language=language), q, False)
    return list(found.values_list("pk", flat=True))


def headline(*, q: str, language: str, column: str = "knowledge_translation.body_text") -> RawSQL | None:
    """PostgreSQL: the snippet of ``knowledge_translation.body_text`` as an expression to annotate
    a page of rows with (one statement for rows and snippets); pass its value through ``marked``.
    None elsewhere, or when the query has no word to highlight."""
    q = clean_query(q)
    tsq, params = _tsquery(language, q) if q and is_postgres() else ("", [])
    if not tsq:
        return None
    return RawSQL(  # noqa: S611
        f"ts_headline(%s::regconfig, {column}, {tsq}, %s)",
        [search_config(language), *params, HEADLINE_OPTIONS],
    )


def snippet(body_text: str, *, q: str, headline_text: str | None = None) -> str:
    """The HTML snippet of one row: ``headline``'s value marked up, or the SQLite excerpt."""
    if headline_text is not None:
        return _marked(headline_text)
    q = clean_query(q)
    return _fallback_snippet(body_text, q) if q else escape(_shorten(body_text))


def _marked(text: str) -> str:
    return str(escape(text)).replace(START, "<mark>").replace(STOP, "</mark>")


def _shorten(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _fallback_snippet(text: str, q: str) -> str:
    words = [_stem(w) for w in _WORD.findall(q.lower())]
    lower = text.lower()
    found = [lower.find(w) for w in words if lower.find(w) >= 0]
    start = max(0, min(found) - 60) if found else 0
    excerpt = text[start:start + 220]
    pattern = re.compile("(" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE) if words else None
    marked = pattern.sub(lambda m: f"{START}{m.group(0)}{STOP}", excerpt) if pattern else excerpt
    return ("… " if start else "") + _marked(marked) + (" …" if start + 220 < len(text) else "")
