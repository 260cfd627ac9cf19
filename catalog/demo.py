"""Demo catalog for `manage.py demo_data`: an internet and TV provider's products in English,
Russian and Polish, a few rules, two offers, and products the demo customers own.

Idempotent on its own: nothing is written when the demo SKUs exist. Bulk inserts, a fixed number
of queries. Demo customers get a market in ``attributes["market"]`` from their language (PL, RU, GB).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.utils import timezone

from catalog.models import (
    Category,
    ExclusiveGroup,
    Offer,
    OwnedProduct,
    Product,
    ProductPrice,
    ProductText,
    Rule,
)
from catalog.search import search_words_add
from customers.models import Customer

# (sku, kind, category, prices {market: amount}, {language: (name, description, short)})
PRODUCTS = [
    ("PLAN-BASIC", "product", "Internet plans", {"PL": "49.00", "RU": "590.00", "GB": "19.00"}, {
        "en": ("Basic internet 100", "Home internet up to 100 Mbit/s, no data cap, 24-month contract.", "Internet 100 Mbit/s, no cap."),
        "ru": ("Базовый интернет 100", "Домашний интернет до 100 Мбит/с без ограничения трафика, договор на 24 месяца.", "Интернет 100 Мбит/с без лимита."),
        "pl": ("Internet Basic 100", "Internet domowy do 100 Mb/s bez limitu danych, umowa na 24 miesiące.", "Internet 100 Mb/s bez limitu."),
    }),
    ("PLAN-PLUS", "product", "Internet plans", {"PL": "69.00", "RU": "790.00", "GB": "29.00"}, {
        "en": ("Plus internet 600", "Fibre internet up to 600 Mbit/s with a Wi-Fi 6 router included.", "Fibre 600 Mbit/s + Wi-Fi 6 router."),
        "ru": ("Интернет Плюс 600", "Оптоволоконный интернет до 600 Мбит/с, роутер Wi-Fi 6 включён.", "Оптоволокно 600 Мбит/с + роутер."),
        "pl": ("Internet Plus 600", "Światłowód do 600 Mb/s z routerem Wi-Fi 6 w cenie.", "Światłowód 600 Mb/s + router."),
    }),
    ("PLAN-BUSINESS", "product", "Internet plans", {"PL": "149.00", "RU": "1990.00", "GB": "59.00"}, {
        "en": ("Business fibre 1000", "Symmetric 1 Gbit/s fibre with a 4-hour repair promise and a static IP.", "1 Gbit/s business fibre, 4 h repair."),
        "ru": ("Бизнес-оптоволокно 1000", "Симметричный 1 Гбит/с, ремонт за 4 часа и статический IP.", "1 Гбит/с для бизнеса, ремонт за 4 ч."),
        "pl": ("Światłowód Biznes 1000", "Symetryczne 1 Gb/s, naprawa w 4 godziny i stały adres IP.", "1 Gb/s dla firm, naprawa w 4 h."),
    }),
    ("RTR-AX3000", "product", "Equipment", {"PL": "399.00", "RU": "6990.00", "GB": "89.00"}, {
        "en": ("Wi-Fi 6 router AX3000", "Dual-band Wi-Fi 6 router for homes up to 120 m², four gigabit ports.", "Wi-Fi 6 router, 4 gigabit ports."),
        "ru": ("Роутер Wi-Fi 6 AX3000", "Двухдиапазонный роутер Wi-Fi 6 для квартир до 120 м², четыре гигабитных порта.", "Роутер Wi-Fi 6, 4 порта."),
        "pl": ("Router Wi-Fi 6 AX3000", "Dwupasmowy router Wi-Fi 6 do mieszkań do 120 m², cztery porty gigabitowe.", "Router Wi-Fi 6, 4 porty."),
    }),
    ("MESH-AX", "addon", "Equipment", {"PL": "199.00", "RU": "3490.00", "GB": "49.00"}, {
        "en": ("Mesh extender", "Extends the Wi-Fi of our routers to every room; up to three per home.", "Wi-Fi in every room."),
        "ru": ("Mesh-усилитель", "Расширяет Wi-Fi наших роутеров на все комнаты; до трёх на квартиру.", "Wi-Fi в каждой комнате."),
        "pl": ("Wzmacniacz Mesh", "Rozszerza Wi-Fi naszych routerów na każdy pokój; do trzech na dom.", "Wi-Fi w każdym pokoju."),
    }),
    ("TV-BOX-4K", "product", "Television", {"PL": "19.00", "RU": "290.00", "GB": "9.00"}, {
        "en": ("4K TV box", "Over 150 channels in 4K, recording and replay of the last 7 days.", "150+ channels in 4K, 7-day replay."),
        "ru": ("ТВ-приставка 4K", "Более 150 каналов в 4K, запись и повтор за последние 7 дней.", "150+ каналов в 4K."),
        "pl": ("Dekoder TV 4K", "Ponad 150 kanałów w 4K, nagrywanie i powtórki z 7 dni.", "150+ kanałów w 4K."),
    }),
    ("TV-SPORT", "addon", "Television", {"PL": "25.00", "RU": "390.00", "GB": "12.00"}, {
        "en": ("Sport package", "Live football, tennis and motorsport channels.", "Live sport channels."),
        "ru": ("Спортивный пакет", "Футбол, теннис и автоспорт в прямом эфире.", "Спорт в прямом эфире."),
        "pl": ("Pakiet Sport", "Piłka nożna, tenis i sporty motorowe na żywo.", "Sport na żywo."),
    }),
    ("STATIC-IP", "option", "Options", {"PL": "15.00", "RU": "250.00", "GB": "5.00"}, {
        "en": ("Static IP address", "A fixed public IPv4 address for servers and remote access.", "Fixed public IPv4."),
        "ru": ("Статический IP-адрес", "Постоянный публичный IPv4 для серверов и удалённого доступа.", "Постоянный IPv4."),
        "pl": ("Stały adres IP", "Stały publiczny adres IPv4 dla serwerów i zdalnego dostępu.", "Stały IPv4."),
    }),
    ("SIM-5G", "product", "Mobile", {"PL": "30.00", "RU": "450.00", "GB": "10.00"}, {
        "en": ("5G SIM card", "Unlimited calls and 50 GB of 5G data a month; up to five per account.", "5G SIM, 50 GB."),
        "ru": ("SIM-карта 5G", "Безлимитные звонки и 50 ГБ 5G в месяц; до пяти на аккаунт.", "SIM 5G, 50 ГБ."),
        "pl": ("Karta SIM 5G", "Nielimitowane rozmowy i 50 GB 5G miesięcznie; do pięciu na konto.", "SIM 5G, 50 GB."),
    }),
]
CURRENCY = {"PL": "PLN", "RU": "RUB", "GB": "GBP"}
MARKET_FOR_LANGUAGE = {"pl": "PL", "ru": "RU", "en": "GB"}
PLAN_SKU = {"Basic": "PLAN-BASIC", "Plus": "PLAN-PLUS", "Business": "PLAN-BUSINESS"}


def demo_catalog_loaded() -> bool:
    return Product.objects.filter(sku__in=[row[0] for row in PRODUCTS]).exists()


def load_demo_catalog(*, customers, seed: int = 42) -> dict[str, int]:
    """Write the demo catalog; give ``customers`` (demo customers) their plan, a router and a market.
    Call it when ``demo_catalog_loaded()`` is false."""
    rng = random.Random(seed)
    categories = {name: Category.objects.get_or_create(name=name)[0] for name in sorted({row[2] for row in PRODUCTS})}
    products = Product.objects.bulk_create([
        Product(sku=sku, kind=kind, status=Product.Status.ACTIVE, category=categories[category], source_language="en")
        for sku, kind, category, _prices, _texts in PRODUCTS
    ])
    by_sku = {p.sku: p for p in products}
    texts = [
        ProductText(product=by_sku[sku], language=language, name=name, description=description, short=short)
        for sku, _k, _c, _p, all_texts in PRODUCTS for language, (name, description, short) in all_texts.items()
    ]
    ProductText.objects.bulk_create(texts)
    search_words_add([t.name for t in texts] + [t.description for t in texts])
    ProductPrice.objects.bulk_create([
        ProductPrice(product=by_sku[sku], market=market, currency=CURRENCY[market], amount=Decimal(amount))
        for sku, _k, _c, prices, _t in PRODUCTS for market, amount in prices.items()
    ])
    R = Rule.Kind
    Rule.objects.bulk_create([
        Rule(product=by_sku["MESH-AX"], kind=R.COMPATIBLE, other=by_sku["RTR-AX3000"]),
        Rule(product=by_sku["MESH-AX"], kind=R.COMPATIBLE, other=by_sku["PLAN-PLUS"]),
        Rule(product=by_sku["MESH-AX"], kind=R.QUANTITY, min_quantity=1, max_quantity=3),
        Rule(product=by_sku["TV-SPORT"], kind=R.REQUIRES, other=by_sku["TV-BOX-4K"]),
        Rule(product=by_sku["STATIC-IP"], kind=R.EXCLUDES, other=by_sku["PLAN-BASIC"]),
        Rule(product=by_sku["SIM-5G"], kind=R.QUANTITY, min_quantity=1, max_quantity=5),
    ])
    plans = ExclusiveGroup.objects.create(name="Internet plans")
    plans.products.set([by_sku["PLAN-BASIC"], by_sku["PLAN-PLUS"], by_sku["PLAN-BUSINESS"]])
    today = timezone.localdate()
    welcome = Offer.objects.create(
        code="WELCOME-3M", kind=Offer.Kind.OFFER, name="First three months at half price",
        terms="New customers only. 50% off the monthly fee of any internet plan for the first three months.",
        valid_from=today - dt.timedelta(days=30), valid_until=today + dt.timedelta(days=60), lifecycle_stages=["prospect"],
    )
    welcome.products.set([by_sku["PLAN-BASIC"], by_sku["PLAN-PLUS"]])
    welcome.excludes_owned.set([by_sku["PLAN-BASIC"], by_sku["PLAN-PLUS"], by_sku["PLAN-BUSINESS"]])
    upgrade = Offer.objects.create(
        code="UPGRADE-PLUS", kind=Offer.Kind.PLAN, name="Upgrade to Plus, router included",
        terms="Customers on Basic move to Plus for the Basic price for six months.", markets=["PL", "GB"],
    )
    upgrade.products.set([by_sku["PLAN-PLUS"]])
    upgrade.requires_owned.set([by_sku["PLAN-BASIC"]])

    owned, changed = [], []
    for customer in customers:
        market = MARKET_FOR_LANGUAGE.get(customer.language)
        if market and "market" not in customer.attributes:
            customer.attributes = {**customer.attributes, "market": market}
            changed.append(customer)
        plan = PLAN_SKU.get(customer.attributes.get("plan", ""))
        if plan is None:
            continue
        start = today - dt.timedelta(days=rng.randint(30, 900))
        owned.append(OwnedProduct(customer=customer, product=by_sku[plan], reference=f"CT-{rng.randint(100000, 999999)}",
                                  start_date=start))
        if plan != "PLAN-BASIC" or rng.random() < 0.5:
            owned.append(OwnedProduct(customer=customer, product=by_sku["RTR-AX3000"],
                                      reference=f"SN-AX{rng.randint(10**7, 10**8 - 1)}", start_date=start))
        if rng.random() < 0.3:
            ended = rng.random() < 0.3
            owned.append(OwnedProduct(
                customer=customer, product=by_sku["TV-BOX-4K"], reference=f"SN-TV{rng.randint(10**6, 10**7 - 1)}",
                start_date=start, end_date=today - dt.timedelta(days=rng.randint(1, 20)) if ended else None,
                status=OwnedProduct.Status.ENDED if ended else OwnedProduct.Status.ACTIVE,
            ))
    OwnedProduct.objects.bulk_create(owned)
    Customer.objects.bulk_update(changed, ["attributes"], batch_size=500)
    return {"products": len(products), "owned": len(owned)}
