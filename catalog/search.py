"""Product search for agents, bots and the API.

PostgreSQL: full-text search per translation with the configuration of its language (``english``
and ``russian`` stem; Polish, which PostgreSQL cannot stem, uses ``simple``), plus ``pg_trgm``
word similarity on names and similarity on SKUs, so typos still find products. Name matches
weigh more than description matches (weights A and B). The expressions below are exactly those of
the partial GIN indexes of migration ``0002_catalog_search``; change both together.

SQLite (the embedded mode): a simpler scan scored in Python, with difflib for typos. It reads every
active product text, which is fine for a demo catalog and not meant for a large one.
"""

from __future__ import annotations

import difflib
import re

from django.db import connection, transaction

from catalog.models import Product, ProductText

# At most this many ranked hits are returned (and paginated); agents refine the query instead.
MAX_HITS = 200
MAX_QUERY_LENGTH = 200

FTS_CONFIGS = {"en": "english", "ru": "russian", "pl": "simple"}

# pg_trgm's default word-similarity threshold (0.6) misses two typos in two words ("wirless
# ruoter" scores 0.41 against "Wireless router"); set for our transaction only, never the session.
WORD_SIMILARITY_THRESHOLD = "0.4"


def fts_vector_sql(config: str) -> str:
    """The indexed expression for one language (migration 0002 uses this function too)."""
    return (
        f"(setweight(to_tsvector('{config}'::regconfig, name), 'A') || "
        f"setweight(to_tsvector('{config}'::regconfig, description), 'B'))"
    )


def _pg_sql(include_inactive: bool) -> str:
    # Only constants of this module are formatted in; the query text is always a parameter.
    parts = [
        f"SELECT product_id, ts_rank({fts_vector_sql(config)}, websearch_to_tsquery('{config}'::regconfig, %(q)s)) * 4 AS score "  # noqa: S608
        f"FROM catalog_producttext WHERE language = '{language}' "
        f"AND {fts_vector_sql(config)} @@ websearch_to_tsquery('{config}'::regconfig, %(q)s)"
        for language, config in FTS_CONFIGS.items()
    ]
    # Typos: the query is close to a word sequence of a name, or to a SKU.
    parts.append("SELECT product_id, word_similarity(%(q)s, name) AS score FROM catalog_producttext WHERE %(q)s <%% name")
    parts.append("SELECT id, 1 + similarity(sku, %(q)s) AS score FROM catalog_product WHERE sku %% %(q)s")
    parts.append("SELECT id, 5 AS score FROM catalog_product WHERE upper(sku) = upper(%(q)s)")
    status = "" if include_inactive else "WHERE p.status = 'active'"
    return (
        "SELECT h.product_id FROM (" + " UNION ALL ".join(parts) + ") h "  # noqa: S608
        f"JOIN catalog_product p ON p.id = h.product_id {status} "
        "GROUP BY h.product_id, p.sku ORDER BY sum(h.score) DESC, p.sku LIMIT %(limit)s"
    )


def _clean(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip()[:MAX_QUERY_LENGTH]


def search_product_ids(query: str, *, include_inactive: bool = False, limit: int = MAX_HITS) -> list[int]:
    """Ids of the products matching ``query``, best first."""
    query = _clean(query)
    if not query:
        return []
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [WORD_SIMILARITY_THRESHOLD])
            cursor.execute(_pg_sql(include_inactive), {"q": query, "limit": limit})
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
