"""Catalog search over 50,000 products on PostgreSQL: p50 and p95 server time.

    .venv/bin/python bench/search_catalog.py                 # 50,000 products, 300 timed queries
    .venv/bin/python bench/search_catalog.py --products 5000 --queries 100 --keep-db

Creates the scratch database ``bench_catalog``, migrates it with production settings, writes the
products with COPY (each with an English, Russian and Polish text and two prices: 150,000 texts),
ANALYZEs, rebuilds the search vocabulary (typo correction), then times a query mix (English and Russian words and inflections, Polish words, typos,
whole and partial SKUs) in this process:

- ``search``: ``catalog.search.search_product_ids`` alone (the SQL and its round trip);
- ``api``: ``GET /api/v1/catalog/products/?q=...&lang=...&channel=...`` through Django's full
  request handling (middleware, authentication, DRF, serialization of the first page of 50) with
  Django's test client, i.e. server time without the network.

Target: p95 under 30 ms for the API. Exits 1 when it is missed. Results in var/bench/search_catalog.json.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

DB_NAME = "bench_catalog"
TARGET_P95_MS = 30.0
SEED = 7

# Concepts in three languages: (English, Russian, Polish) nouns and adjectives, so the texts of a
# product are translations of each other, as in a real catalog.
NOUNS = [
    ("router", "маршрутизатор", "router"), ("modem", "модем", "modem"), ("cable", "кабель", "kabel"),
    ("headphones", "наушники", "słuchawki"), ("speaker", "колонка", "głośnik"), ("phone", "телефон", "telefon"),
    ("tablet", "планшет", "tablet"), ("charger", "зарядка", "ładowarka"), ("camera", "камера", "kamera"),
    ("printer", "принтер", "drukarka"), ("keyboard", "клавиатура", "klawiatura"), ("mouse", "мышь", "mysz"),
    ("monitor", "монитор", "monitor"), ("laptop", "ноутбук", "laptop"), ("watch", "часы", "zegarek"),
    ("kettle", "чайник", "czajnik"), ("blender", "блендер", "blender"), ("vacuum cleaner", "пылесос", "odkurzacz"),
    ("heater", "обогреватель", "grzejnik"), ("lamp", "лампа", "lampa"), ("switch", "коммутатор", "przełącznik"),
    ("antenna", "антенна", "antena"), ("battery", "аккумулятор", "akumulator"), ("adapter", "адаптер", "adapter"),
    ("subscription", "подписка", "abonament"), ("warranty", "гарантия", "gwarancja"), ("bag", "сумка", "torba"),
    ("case", "чехол", "etui"), ("drive", "накопитель", "dysk"), ("projector", "проектор", "projektor"),
]
ADJECTIVES = [
    ("wireless", "беспроводной", "bezprzewodowy"), ("portable", "портативный", "przenośny"),
    ("compact", "компактный", "kompaktowy"), ("smart", "умный", "inteligentny"), ("fast", "быстрый", "szybki"),
    ("quiet", "тихий", "cichy"), ("black", "чёрный", "czarny"), ("white", "белый", "biały"),
    ("professional", "профессиональный", "profesjonalny"), ("family", "семейный", "rodzinny"),
    ("outdoor", "уличный", "zewnętrzny"), ("premium", "премиум", "premium"),
]
DESCRIPTION_WORDS = {
    "en": "for home and office with fast delivery two year warranty easy setup energy saving order online today support included",
    "ru": "для дома и офиса с быстрой доставкой гарантия два года простая настройка заказы принимаем онлайн поддержка включена",
    "pl": "do domu i biura z szybką dostawą gwarancja dwa lata łatwa konfiguracja zamówienia online wsparcie w cenie",
}
PREFIXES = ["RTR", "MDM", "CBL", "HPH", "SPK", "PHN", "TAB", "CHG", "CAM", "PRN"]

QUERIES_FIXED = [
    ("router", "en"), ("wireless routers", "en"), ("portable speakers", "en"), ("smart watch", "en"),
    ("vacuum cleaner", "en"), ("маршрутизатор", "ru"), ("маршрутизаторы", "ru"), ("беспроводные наушники", "ru"),
    ("чайника", "ru"), ("заказы", "ru"), ("słuchawki bezprzewodowe", "pl"), ("drukarka", "pl"), ("ładowarki", "pl"),
    ("wirless ruoter", "en"), ("headphnes", "en"), ("прнтер", "ru"), ("odkurzacz", "pl"), ("kettel", "en"),
]


def product_rows(count: int, rng: random.Random):
    """(sku, category, texts{lang: (name, description)}) for each product."""
    for n in range(count):
        noun = rng.randrange(len(NOUNS))
        adjective = rng.randrange(len(ADJECTIVES))
        model = f"{rng.choice('XZQSV')}{rng.randint(10, 9999)}"
        sku = f"{PREFIXES[noun % len(PREFIXES)]}-{n:06d}"
        texts = {}
        for index, language in enumerate(("en", "ru", "pl")):
            name = f"{ADJECTIVES[adjective][index]} {NOUNS[noun][index]} {model}"
            words = DESCRIPTION_WORDS[language].split()
            description = f"{name.capitalize()} " + " ".join(rng.sample(words, 10)) + "."
            texts[language] = (name.capitalize(), description)
        yield sku, texts


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(f'"{c}"' for c in columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load(count: int) -> None:
    import psycopg

    rng = random.Random(SEED)
    now = time.strftime("%Y-%m-%d %H:%M:%S+00")
    with psycopg.connect(common.database_url(DB_NAME), autocommit=False) as conn, conn.cursor() as cursor:
        rows = list(product_rows(count, rng))
        _copy(cursor, "catalog_product", ["id", "sku", "kind", "status", "source_language", "created_at", "updated_at"],
              ((i + 1, sku, "product", "active" if i % 20 else "retired", "en", now, now) for i, (sku, _t) in enumerate(rows)))
        _copy(cursor, "catalog_producttext", ["product_id", "language", "name", "description", "short", "full"],
              ((i + 1, language, name, description, name, "")
               for i, (_sku, texts) in enumerate(rows) for language, (name, description) in texts.items()))
        _copy(cursor, "catalog_productprice", ["product_id", "market", "currency", "amount"],
              ((i + 1, market, currency, f"{rng.randint(5, 2000)}.{rng.randint(0, 99):02d}")
               for i in range(count) for market, currency in (("PL", "PLN"), ("DE", "EUR"))))
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_product', 'id'), %s)", [count])
        conn.commit()
        conn.autocommit = True
        cursor.execute("VACUUM ANALYZE catalog_product")
        cursor.execute("VACUUM ANALYZE catalog_producttext")
        cursor.execute("VACUUM ANALYZE catalog_productprice")


def query_mix(count: int, products: int, rng: random.Random) -> list[tuple[str, str]]:
    mix = []
    while len(mix) < count:
        kind = len(mix) % 4
        if kind < 2:
            mix.append(rng.choice(QUERIES_FIXED))
        elif kind == 2:
            n = rng.randrange(products)
            mix.append((f"{PREFIXES[n % len(PREFIXES)]}-{n:06d}", "en"))  # a whole SKU (prefix may not match: approximate)
        else:
            noun = rng.choice(NOUNS)
            language = rng.choice(["en", "ru", "pl"])
            mix.append((noun[("en", "ru", "pl").index(language)], language))
    return mix


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2), "p95_ms": round(common.percentile(values, 95), 2),
            "max_ms": round(max(values), 2)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep-db", action="store_true")
    args, _unknown = parser.parse_known_args(argv)  # run_all.py passes every benchmark's flags

    var_dir = common.ROOT / "var" / "bench" / "catalog"
    env = common.production_env(db_name=DB_NAME, var_dir=var_dir)
    info = common.machine_info()
    common.log(f"machine: {info}")
    try:
        common.db_recreate(DB_NAME)
        common.log("migrating")
        common.run_checked([common.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env)
        common.log(f"writing {args.products:,} products with COPY")
        started = time.perf_counter()
        load(args.products)
        common.log(f"loaded in {time.perf_counter() - started:.1f} s")

        common.django_setup(env)
        from django.test import Client

        from catalog import search
        from omnicenter.models import User
        from omnicenter.services import user_set_role

        started = time.perf_counter()
        vocabulary = search.search_words_rebuild()  # COPY bypassed the services that keep it
        common.log(f"search vocabulary: {vocabulary:,} words in {time.perf_counter() - started:.1f} s")
        agent = User.objects.create(username="bench-agent")
        user_set_role(user=agent, role="agent")
        client = Client(HTTP_HOST=common.HOST)
        client.force_login(agent)

        rng = random.Random(SEED)
        mix = query_mix(args.queries, args.products, rng)
        for query, language in mix[:30]:  # warm caches and connections, not counted
            search.search_product_ids(query)
            client.get("/api/v1/catalog/products/", {"q": query, "lang": language})

        search_ms, api_ms, hits = [], [], []
        for query, language in mix:
            t0 = time.perf_counter()
            ids = search.search_product_ids(query)
            search_ms.append((time.perf_counter() - t0) * 1000)
            hits.append(len(ids))
            t0 = time.perf_counter()
            response = client.get("/api/v1/catalog/products/", {"q": query, "lang": language, "channel": "sms"})
            api_ms.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{query!r}: HTTP {response.status_code}")
        slow = sorted(zip(api_ms, mix, strict=True), reverse=True)[:5]
        result = {
            "machine": info, "products": args.products, "texts": args.products * 3, "queries": len(mix),
            "search": percentiles(search_ms), "api": percentiles(api_ms),
            "hits_median": statistics.median(hits), "zero_hit_queries": sum(1 for h in hits if h == 0),
            "slowest_api": [{"ms": round(ms, 1), "query": q, "lang": lang} for ms, (q, lang) in slow],
            "target_p95_ms": TARGET_P95_MS,
        }
        common.write_json(common.ROOT / "var" / "bench" / "search_catalog.json", result)
        print()
        print(f"catalog search over {args.products:,} products ({args.products * 3:,} texts), {len(mix)} queries")
        print(f"  search_product_ids   p50 {result['search']['p50_ms']:6.2f} ms   p95 {result['search']['p95_ms']:6.2f} ms")
        print(f"  GET /api/v1/catalog  p50 {result['api']['p50_ms']:6.2f} ms   p95 {result['api']['p95_ms']:6.2f} ms"
              f"   (target p95 < {TARGET_P95_MS:.0f} ms)")
        print(f"  median hits {result['hits_median']}, queries without a hit: {result['zero_hit_queries']}")
        print("  slowest:", ", ".join(f"{s['query']!r} {s['ms']} ms" for s in result["slowest_api"]))
        return 0 if result["api"]["p95_ms"] < TARGET_P95_MS else 1
    finally:
        if not args.keep_db:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            common.db_drop(DB_NAME)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

