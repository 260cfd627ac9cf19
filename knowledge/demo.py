"""Demo knowledge base for `manage.py demo_data`: a few categories and multilingual articles.

Idempotent: an existing slug is left alone.
"""

from __future__ import annotations

from django.utils import timezone

from knowledge import search, services
from knowledge.models import Article, ArticleVersion, Category, Tag, Translation

CATEGORIES = [
    ("orders", None, {"en": "Orders and delivery", "ru": "Заказы и доставка", "pl": "Zamówienia i dostawa"}),
    ("returns", "orders", {"en": "Returns", "ru": "Возвраты", "pl": "Zwroty"}),
    ("account", None, {"en": "Your account", "ru": "Ваш аккаунт", "pl": "Twoje konto"}),
    ("agents", None, {"en": "For agents", "ru": "Для операторов", "pl": "Dla konsultantów"}),
]

ARTICLES = [
    {
        "slug": "track-your-order", "category": "orders", "tags": ["delivery", "order"], "skus": ["RTR-AX3000", "TV-BOX-4K"],
        "translations": {
            "en": ("Track your order", "Every order gets a **tracking number** by email as soon as it ships.\n\n"
                   "1. Open the confirmation email.\n2. Click *Track parcel*.\n\nParcels usually arrive in 2–4 working days.",
                   "Your tracking number is in the shipping email. Delivery takes 2-4 working days."),
            "ru": ("Как отследить заказ", "Как только заказ отправлен, мы присылаем **номер отслеживания** по почте.\n\n"
                   "1. Откройте письмо с подтверждением.\n2. Нажмите «Отследить посылку».\n\nОбычно посылка приходит за 2–4 рабочих дня.",
                   "Номер отслеживания есть в письме об отправке. Доставка 2-4 рабочих дня."),
            "pl": ("Jak śledzić zamówienie", "Każde zamówienie dostaje **numer przesyłki** e-mailem, gdy tylko zostanie wysłane.\n\n"
                   "1. Otwórz e-mail z potwierdzeniem.\n2. Kliknij *Śledź paczkę*.\n\nPaczki docierają zwykle w 2–4 dni robocze.",
                   "Numer przesyłki jest w e-mailu o wysyłce. Dostawa trwa 2-4 dni robocze."),
        },
    },
    {
        "slug": "return-an-item", "category": "returns", "tags": ["returns", "refund"], "skus": [],
        "translations": {
            "en": ("Return an item", "You can return any item **within 30 days**. Pack it with the receipt and "
                   "book a free courier pickup in your account. The refund reaches your card within 5 days of arrival.",
                   "Returns are free within 30 days: book a pickup in your account."),
            "ru": ("Как вернуть товар", "Любой товар можно вернуть **в течение 30 дней**. Упакуйте его вместе с чеком и "
                   "закажите бесплатный курьер в личном кабинете. Деньги вернутся на карту за 5 дней.",
                   "Возврат бесплатный в течение 30 дней: закажите курьера в кабинете."),
            "pl": ("Zwrot towaru", "Każdy towar możesz zwrócić **w ciągu 30 dni**. Zapakuj go z paragonem i "
                   "zamów darmowy odbiór kurierem na swoim koncie. Pieniądze wrócą na kartę w ciągu 5 dni.",
                   "Zwrot jest darmowy w ciągu 30 dni: zamów kuriera na koncie."),
        },
    },
    {
        "slug": "reset-your-password", "category": "account", "tags": ["password", "login"], "skus": [],
        "translations": {
            "en": ("Reset your password", "On the sign-in page choose **Forgot password?** and enter your email. "
                   "The link we send is valid for one hour.", "Use 'Forgot password?' on the sign-in page."),
            "ru": ("Как сбросить пароль", "На странице входа нажмите **«Забыли пароль?»** и введите адрес почты. "
                   "Ссылка из письма действует один час.", "Нажмите «Забыли пароль?» на странице входа."),
            "pl": ("Resetowanie hasła", "Na stronie logowania wybierz **Nie pamiętasz hasła?** i podaj swój e-mail. "
                   "Link z wiadomości jest ważny przez godzinę.", "Użyj 'Nie pamiętasz hasła?' na stronie logowania."),
        },
    },
    {
        "slug": "change-delivery-address", "category": "orders", "tags": ["delivery", "address"], "skus": [],
        "translations": {
            "en": ("Change the delivery address", "Until an order ships you can change its address under "
                   "**Orders → Details → Change address**. After that, ask the courier to redirect the parcel.", ""),
            "ru": ("Как изменить адрес доставки", "Пока заказ не отправлен, адрес можно изменить в разделе "
                   "**Заказы → Подробнее → Изменить адрес**. Потом — только через курьерскую службу.", ""),
        },
    },
    {
        "slug": "refund-exceptions-for-agents", "category": "agents", "tags": ["refund", "internal"], "skus": [],
        "visibility": Article.Visibility.INTERNAL,
        "translations": {
            "en": ("Refund exceptions (agents only)", "Business customers may get a refund **after 30 days** with a "
                   "supervisor's approval. Note the approval on the ticket before promising anything.", ""),
            "ru": ("Исключения для возвратов (для операторов)", "Бизнес-клиентам возврат **после 30 дней** возможен с "
                   "согласия супервайзера. Отметьте согласие в тикете, прежде чем что-то обещать.", ""),
        },
    },
]


def load_demo_articles(*, by=None) -> int:
    """Create the demo categories and articles unless they are all there; returns how many
    articles were made. Bulk inserts, as demo_data writes its other rows: the rows, their first
    version and their search vectors are what article_create would have left, in a few queries."""
    slugs = [a["slug"] for a in ARTICLES]
    existing = set(Article.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    if len(existing) == len(slugs):
        return 0
    Category.objects.bulk_create(
        [Category(slug=slug, names=names) for slug, _parent, names in CATEGORIES], ignore_conflicts=True,
    )
    categories = {c.slug: c for c in Category.objects.filter(slug__in=[c[0] for c in CATEGORIES])}
    for slug, parent, _names in CATEGORIES:
        if parent and categories[slug].parent_id is None:
            categories[slug].parent = categories[parent]
    Category.objects.bulk_update(list(categories.values()), ["parent"])
    specs = [spec for spec in ARTICLES if spec["slug"] not in existing]
    now = timezone.now()
    articles = Article.objects.bulk_create([
        Article(
            slug=spec["slug"], category=categories[spec["category"]], status=Article.Status.PUBLISHED,
            visibility=spec.get("visibility", Article.Visibility.PUBLIC), source_language="en",
            related_product_skus=spec["skus"], created_by=by, updated_by=by, published_at=now,
        )
        for spec in specs
    ])
    translations = []
    for article, spec in zip(articles, specs, strict=True):
        for language, (title, body, short) in spec["translations"].items():
            translation = Translation(article=article, language=language, title=title, body=body, short_text=short)
            services.translation_derive(translation)
            translations.append(translation)
    Translation.objects.bulk_create(translations)
    names = sorted({tag for spec in specs for tag in spec["tags"]})
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    Article.tags.through.objects.bulk_create([
        Article.tags.through(article=article, tag_id=tag_ids[name])
        for article, spec in zip(articles, specs, strict=True) for name in spec["tags"]
    ])
    search.index_translations([t.pk for t in translations])
    by_article: dict[int, list[Translation]] = {}
    for translation in translations:
        by_article.setdefault(translation.article_id, []).append(translation)
    ArticleVersion.objects.bulk_create([
        ArticleVersion(article=article, number=1, created_by=by, summary="demo data; created", snapshot={
            "slug": article.slug, "category": spec["category"], "status": article.status,
            "visibility": article.visibility, "source_language": "en", "tags": sorted(spec["tags"]),
            "related_product_skus": spec["skus"], "related_articles": [],
            "translations": {
                t.language: {f: getattr(t, f) for f in services.CONTENT_FIELDS}
                for t in sorted(by_article[article.pk], key=lambda t: t.language)
            },
        })
        for article, spec in zip(articles, specs, strict=True)
    ])
    return len(articles)
