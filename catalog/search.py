"""Product search for agents, bots and the API.

PostgreSQL, one statement in two steps:

1. Typos are corrected word by word against the vocabulary of the catalog (``SearchWord``, every
   word of the product texts): a query word that is not a catalog word becomes the most similar
   catalog word by ``pg_trgm`` similarity (``wirless ruoter`` → ``wireless router``,
   ``маршрутизтор`` → ``маршрутизатор``). The vocabulary is small, so this is fast whatever the
   size of the catalog, where trigram matching over every name was not (see docs/catalog.md).
2. Full-text search per translation with the text-search configuration of its language:
   ``english`` and ``russian`` stem; Polish, which PostgreSQL cannot stem, uses the knowledge
   base's ``polish_unaccent`` (lowercase, no diacritics: ``sluchawki`` finds ``słuchawki``; the
   word correction above brings inflected Polish forms to a catalog word). Both the query and
   its corrected form are searched. Names weigh more than descriptions (weights A and B). SKUs
   match exactly or by prefix (case-insensitive), and SKU-like queries (one word with a digit)
   also by trigram similarity.

The tsvector is a stored generated column of ``catalog_producttext`` that exists on PostgreSQL only
(migrations ``0002_catalog_search``, ``0005_catalog_polish_unaccent``), with one partial GIN index
per language.

SQLite (the embedded mode): a simpler scan scored in Python, with difflib for typos. It reads every
active product text, which is fine for a demo catalog and not meant for a large one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from django.db import connection

from catalog.models import Product, ProductText, SearchWord
from knowledge.languages import SEARCH_CONFIGS

# At most this many ranked hits are returned (and paginated); agents refine the query instead.
MAX_HITS = 200
MAX_QUERY_LENGTH = 200
MAX_QUERY_WORDS = 8
CANDIDATES = 500  # rows read per language and branch (names, names and descriptions)

# The knowledge base's configurations (Polish: ``polish_unaccent``, migration 0005). A change here
# needs a migration: the generated column and the name indexes hold these names.
FTS_CONFIGS = dict(SEARCH_CONFIGS)

# A swapped pair of letters ("ruoter") leaves only ~0.27 trigram similarity to the intended word
# ("router"), below pg_trgm's default 0.3; the closest catalog word still wins from 0.2 on. The
# original words are searched too, so a wrong correction only adds results.
MIN_WORD_SIMILARITY = 0.2

WORD_RE = re.compile(r"[^\W\d_]{3,64}")  # words of letters only: model numbers are matched as SKUs


def words_of(text: str) -> set[str]:
    return {word.casefold() for word in WORD_RE.findall(text or "")}


def search_words_add(texts: Iterable[str]) -> None:
    """Add the words of these texts to the vocabulary typos are corrected against."""
    words = set().union(*(words_of(text) for text in texts)) if texts else set()
    if words:
        SearchWord.objects.bulk_create([SearchWord(word=w) for w in sorted(words)], ignore_conflicts=True, batch_size=1000)


def search_words_rebuild(batch: int = 5000) -> int:
    """Rebuild the vocabulary from every product text (after bulk loads that bypass services)."""
    words: set[str] = set()
    for name, description in ProductText.objects.values_list("name", "description").iterator(chunk_size=batch):
        words |= words_of(name) | words_of(description)
    SearchWord.objects.all().delete()
    SearchWord.objects.bulk_create([SearchWord(word=w) for w in sorted(words)], batch_size=1000)
    return len(words)


# One round trip: the corrected query is a CTE of the search statement (each round trip costs more
# than the correction itself on a busy machine).
_CORRECT_SQL = """
SELECT coalesce(string_agg(coalesce(
    (SELECT sw.word FROM catalog_searchword sw WHERE sw.word = q.w),
    (SELECT c.word FROM (SELECT sw.word, sw.word <-> q.w AS distance FROM catalog_searchword sw
                         ORDER BY sw.word <-> q.w, sw.word LIMIT 1) c WHERE c.distance <= %(max_distance)s),
    q.w), ' ' ORDER BY q.n), '') AS fixed
FROM unnest(%(words)s::text[]) WITH ORDINALITY AS q(w, n)
"""


def _vector_sql(config: str) -> str:
    return (f"(setweight(to_tsvector('{config}'::regconfig, coalesce(name, '')), 'A') || "
            f"setweight(to_tsvector('{config}'::regconfig, coalesce(description, '')), 'B'))")


def generated_column_sql() -> str:
    """The stored tsvector of a text, in the configuration of its language (migration 0002)."""
    cases = " ".join(f"WHEN '{language}' THEN {_vector_sql(config)}" for language, config in FTS_CONFIGS.items())
    return f"CASE language {cases} ELSE {_vector_sql('simple')} END"


def name_vector_sql(config: str) -> str:
    """The indexed expression of names alone (partial GIN indexes of migration 0003)."""
    return f"to_tsvector('{config}'::regconfig, name)"


def looks_like_sku(query: str) -> bool:
    return " " not in query and any(c.isdigit() for c in query)


def _pg_sql(include_inactive: bool, sku_like: bool) -> str:
    # Only constants of this module are formatted in; the query text is always a parameter.
    #
    # Names first, in their own branch per language; descriptions only when the names found
    # cannot fill the page (a one-time filter PostgreSQL checks before it scans: a description
    # match, scored below 2, could not reach the page anyway). Each branch reads at most
    # CANDIDATES texts, the first it finds: a word of most names or descriptions would otherwise
    # rank tens of thousands of rows (choosing the newest instead cost 40% more, docs/catalog.md).
    # A product's score is its best match (``max``), never a sum over branches and languages: a
    # product that happened to be found in two languages is not a better match than one found in
    # one, and its name's rank already counts its description (weight B).
    names, descriptions = [], []
    for language, config in FTS_CONFIGS.items():
        tsquery = (f"(websearch_to_tsquery('{config}'::regconfig, %(q)s) || "  # noqa: S608
                   f"websearch_to_tsquery('{config}'::regconfig, (SELECT fixed FROM corrected)))")
        names.append(
            f"(SELECT product_id, 2 + ts_rank(search_vector, {tsquery}) AS score FROM catalog_producttext "  # noqa: S608
            f"WHERE language = '{language}' AND {name_vector_sql(config)} @@ {tsquery} LIMIT {CANDIDATES})"
        )
        descriptions.append(
            f"(SELECT product_id, ts_rank(search_vector, {tsquery}) AS score FROM catalog_producttext "  # noqa: S608
            f"WHERE language = '{language}' AND search_vector @@ {tsquery} "
            f"AND (SELECT count(*) FROM names) < %(limit)s LIMIT {CANDIDATES})"
        )
    others = [
        "SELECT product_id, score FROM names",
        *descriptions,
        "SELECT id, 5 AS score FROM catalog_product WHERE upper(sku) = upper(%(q)s)",
        "(SELECT id, 3 AS score FROM catalog_product WHERE upper(sku) LIKE %(sku_prefix)s LIMIT 50)",
    ]
    if sku_like:
        # Trigram similarity over SKUs that share a pattern reads many rows, so only when no SKU
        # starts with the query (a one-time filter PostgreSQL checks before scanning), and the 50
        # most similar by the GiST index's order (migration 0004), never a scan of the catalog.
        others.append(
            "(SELECT id, 1 + similarity(sku, %(q)s) AS score FROM catalog_product WHERE sku %% %(q)s AND NOT EXISTS "
            "(SELECT 1 FROM catalog_product e WHERE upper(e.sku) LIKE %(sku_prefix)s) ORDER BY sku <-> %(q)s LIMIT 50)"
        )
    status = "" if include_inactive else "WHERE p.status = 'active'"
    return (
        f"WITH corrected AS MATERIALIZED ({_CORRECT_SQL.strip()}), "  # noqa: S608
        f"names AS MATERIALIZED (SELECT n.product_id, max(n.score) AS score FROM ({' UNION ALL '.join(names)}) n "
        "GROUP BY n.product_id), "
        f"hits AS MATERIALIZED (SELECT product_id, max(score) AS score FROM ({' UNION ALL '.join(others)}) h GROUP BY product_id) "
        f"SELECT hits.product_id FROM hits JOIN catalog_product p ON p.id = hits.product_id {status} "
        "ORDER BY hits.score DESC, p.sku LIMIT %(limit)s"
    )


def _clean(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip()[:MAX_QUERY_LENGTH]


def corrected_query(query: str) -> str:
    """The query with each word that is not a catalog word replaced by the closest one (PostgreSQL)."""
    words = [w.casefold() for w in WORD_RE.findall(query)][:MAX_QUERY_WORDS]
    if not words:
        return ""
    with connection.cursor() as cursor:
        cursor.execute(_CORRECT_SQL, {"words": words, "max_distance": 1 - MIN_WORD_SIMILARITY})
        return cursor.fetchone()[0]


def pg_statement(query: str, *, include_inactive: bool = False, limit: int = MAX_HITS) -> tuple[str, dict]:
    """The PostgreSQL search statement and its parameters for a cleaned query (bench/ runs it too)."""
    words = [w.casefold() for w in WORD_RE.findall(query)][:MAX_QUERY_WORDS]
    prefix = query.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    params = {"q": query, "words": words, "max_distance": 1 - MIN_WORD_SIMILARITY, "sku_prefix": prefix, "limit": limit}
    return _pg_sql(include_inactive, looks_like_sku(query)), params


def search_product_ids(query: str, *, include_inactive: bool = False, limit: int = MAX_HITS) -> list[int]:
    """Ids of the products matching ``query``, best first."""
    query = _clean(query)
    if not query:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*pg_statement(query, include_inactive=include_inactive, limit=limit))
            return [row[0] for row in cursor.fetchall()]
    return _fallback(query, include_inactive=include_inactive, limit=limit)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _fallback(query: str, *, include_inactive: bool, limit: int) -> list[int]:
    texts = ProductText.objects.all() if include_inactive else ProductText.objects.filter(product__status=Product.Status.ACTIVE)
    rows = texts.values_list("product_id", "product__sku", "name", "description")
    wanted = _words(query)
    folded = query.casefold()
    scores: dict[int, tuple[float, str]] = {}
    for product_id, sku, name, description in rows:
        name_words, description_words = _words(name), _words(description)
        score = 0.0
        if sku.casefold() == folded:
            score += 5
        elif folded in sku.casefold():
            score += 2
        for word in wanted:
            if any(w.startswith(word) for w in name_words):
                score += 2
            elif any(w.startswith(word) for w in description_words):
                score += 1
            elif difflib.get_close_matches(word, name_words, n=1, cutoff=0.75):
                score += 0.8
        if score and score > scores.get(product_id, (0, ""))[0]:
            scores[product_id] = (score, sku)
    ranked = sorted(scores.items(), key=lambda item: (-item[1][0], item[1][1]))
    return [product_id for product_id, _score in ranked[:limit]]
