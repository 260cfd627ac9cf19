"""catalog.services.validate_configuration: every rule kind, combinations, explanations in the
language asked for, owned products, markets."""

from __future__ import annotations

import itertools

import pytest
from django.utils import translation

from catalog.models import Product, Rule
from catalog.services import validate_configuration
from tests.catalog.factories import GroupFactory, OwnedProductFactory, ProductFactory, RuleFactory
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def router():
    return ProductFactory(sku="RTR-1", name="Fibre router", texts={"ru": "Оптоволоконный роутер"})


@pytest.fixture
def mesh():
    return ProductFactory(sku="MESH-1", name="Mesh extender", kind=Product.Kind.ADDON, texts={"ru": "Усилитель Mesh"})


@pytest.fixture
def tv():
    return ProductFactory(sku="TV-1", name="TV box", texts={"ru": "ТВ-приставка"})


def messages(result) -> list[str]:
    return [v.message for v in result.violations]


def test_a_configuration_within_every_rule_is_valid(router, mesh):
    RuleFactory(product=mesh, kind=Rule.Kind.REQUIRES, other=router)
    RuleFactory(product=mesh, kind=Rule.Kind.QUANTITY, other=None, min_quantity=1, max_quantity=3)

    result = validate_configuration(items=[(router, 1), (mesh, 2)], market="PL", language="en")

    assert result.valid
    assert result.violations == []


def test_requires_explains_what_to_add_in_english_and_russian(router, mesh, tv, russian):
    RuleFactory(product=tv, kind=Rule.Kind.REQUIRES, other=router)

    english = validate_configuration(items=[(tv, 1)], language="en")
    russian_result = validate_configuration(items=[(tv, 1)], language="ru")

    assert messages(english) == ["TV box (TV-1) requires Fibre router (RTR-1); add Fibre router (RTR-1) to the configuration."]
    assert [v.rule for v in english.violations] == ["requires"]
    assert english.violations[0].products == ("TV-1", "RTR-1")
    assert messages(russian_result) == [
        "ТВ-приставка (TV-1) требует Оптоволоконный роутер (RTR-1); добавьте Оптоволоконный роутер (RTR-1) в конфигурацию."
    ]


def test_the_requested_language_wins_over_the_active_one(router, tv, russian):
    RuleFactory(product=tv, kind=Rule.Kind.EXCLUDES, other=router)
    with translation.override("ru"):
        result = validate_configuration(items=[(tv, 1), (router, 1)], language="en")
        assert translation.get_language() == "ru"
    assert messages(result) == ["TV box (TV-1) cannot be combined with Fibre router (RTR-1)."]


def test_excludes_in_both_languages(router, tv, russian):
    RuleFactory(product=tv, kind=Rule.Kind.EXCLUDES, other=router)

    assert messages(validate_configuration(items=[(tv, 1)], language="en")) == []
    result = validate_configuration(items=[(router, 1), (tv, 1)], language="ru")
    assert messages(result) == ["ТВ-приставка (TV-1) нельзя сочетать с Оптоволоконный роутер (RTR-1)."]
    assert result.violations[0].rule == "excludes"


def test_compatible_with_needs_one_of_the_named_products(router, mesh, tv, russian):
    other_router = ProductFactory(sku="RTR-2", name="Cable router")
    RuleFactory(product=mesh, kind=Rule.Kind.COMPATIBLE, other=router)
    RuleFactory(product=mesh, kind=Rule.Kind.COMPATIBLE, other=other_router)

    assert validate_configuration(items=[(mesh, 1), (other_router, 1)]).valid
    result = validate_configuration(items=[(mesh, 1), (tv, 1)], language="en")
    assert messages(result) == ["Mesh extender (MESH-1) works only with one of: Fibre router (RTR-1), Cable router (RTR-2)."]
    assert result.violations[0].products == ("MESH-1", "RTR-1", "RTR-2")
    russian_result = validate_configuration(items=[(mesh, 1), (tv, 1)], language="ru")
    assert messages(russian_result) == [
        "Усилитель Mesh (MESH-1) работает только с одним из: Оптоволоконный роутер (RTR-1), Cable router (RTR-2)."
    ]


@pytest.mark.parametrize(("quantity", "english", "russian_text"), [
    (1, "Fibre router (RTR-1) needs a quantity of at least 2 (asked for 1).",
     "Для Оптоволоконный роутер (RTR-1) нужно не меньше 2 (запрошено 1)."),
    (6, "Fibre router (RTR-1) allows a quantity of at most 5 (asked for 6).",
     "Для Оптоволоконный роутер (RTR-1) можно не больше 5 (запрошено 6)."),
])
def test_min_and_max_quantity(router, russian, quantity, english, russian_text):
    RuleFactory(product=router, kind=Rule.Kind.QUANTITY, other=None, min_quantity=2, max_quantity=5)

    assert validate_configuration(items=[(router, 2)]).valid
    assert validate_configuration(items=[(router, 5)]).valid
    assert messages(validate_configuration(items=[(router, quantity)], language="en")) == [english]
    assert messages(validate_configuration(items=[(router, quantity)], language="ru")) == [russian_text]


def test_quantities_of_repeated_lines_add_up(router):
    RuleFactory(product=router, kind=Rule.Kind.QUANTITY, other=None, max_quantity=2)
    result = validate_configuration(items=[(router, 2), (router, 1)], language="en")
    assert messages(result) == ["Fibre router (RTR-1) allows a quantity of at most 2 (asked for 3)."]


def test_mutually_exclusive_group_allows_one_member(router, tv, russian):
    cable = ProductFactory(sku="RTR-2", name="Cable router", texts={"ru": "Кабельный роутер"})
    GroupFactory(name="Routers", products=[router, cable])

    assert validate_configuration(items=[(router, 1), (tv, 1)]).valid
    english = validate_configuration(items=[(router, 1), (cable, 1), (tv, 1)], language="en")
    assert messages(english) == ["Choose only one of “Routers”: Fibre router (RTR-1), Cable router (RTR-2)."]
    assert english.violations[0].rule == "group"
    russian_result = validate_configuration(items=[(router, 1), (cable, 1)], language="ru")
    assert messages(russian_result) == ["Выберите только одно из «Routers»: Оптоволоконный роутер (RTR-1), Кабельный роутер (RTR-2)."]


def test_an_addon_alone_needs_a_main_product(mesh, router, russian):
    assert messages(validate_configuration(items=[(mesh, 1)], language="en")) == [
        "Mesh extender (MESH-1) is an option or add-on and needs a main product in the configuration."
    ]
    assert validate_configuration(items=[(mesh, 1), (router, 1)]).valid
    customer = CustomerFactory()
    OwnedProductFactory(customer=customer, product=router)
    assert validate_configuration(items=[(mesh, 1)], customer=customer).valid


def test_unavailable_products_and_markets_are_explained(router, tv, russian):
    tv.status = Product.Status.RETIRED
    tv.save()

    result = validate_configuration(items=[(router, 1), (tv, 1)], market="de", language="en")

    assert result.market == "DE"
    assert messages(result) == [
        "Fibre router (RTR-1) is not sold in market DE.",
        "TV box (TV-1) is not available.",
        "TV box (TV-1) is not sold in market DE.",
    ]
    assert messages(validate_configuration(items=[(router, 1)], market="DE", language="ru")) == [
        "Оптоволоконный роутер (RTR-1) не продаётся на рынке DE."
    ]


def test_the_customers_market_applies_when_none_is_given(router):
    customer = CustomerFactory(attributes={"market": "gb"})
    result = validate_configuration(items=[(router, 1)], customer=customer, language="en")
    assert result.market == "GB"
    assert [v.rule for v in result.violations] == ["market"]
    assert validate_configuration(items=[(router, 1)], customer=customer, market="PL").valid


def test_owned_products_satisfy_requires_and_count_against_excludes(router, mesh, tv, russian):
    RuleFactory(product=mesh, kind=Rule.Kind.REQUIRES, other=router)
    RuleFactory(product=tv, kind=Rule.Kind.EXCLUDES, other=router)
    customer = CustomerFactory()
    owned = OwnedProductFactory(customer=customer, product=router)

    assert validate_configuration(items=[(mesh, 1)], customer=customer).valid
    result = validate_configuration(items=[(tv, 1)], customer=customer, language="en")
    assert messages(result) == ["TV box (TV-1) cannot be combined with Fibre router (RTR-1), which the customer already owns."]
    assert messages(validate_configuration(items=[(tv, 1)], customer=customer, language="ru")) == [
        "ТВ-приставка (TV-1) нельзя сочетать с Оптоволоконный роутер (RTR-1), который у клиента уже есть."
    ]

    owned.status = owned.Status.ENDED
    owned.save()
    assert validate_configuration(items=[(tv, 1)], customer=customer).valid
    assert [v.rule for v in validate_configuration(items=[(mesh, 1)], customer=customer).violations] == ["base", "requires"]


def test_every_broken_rule_of_a_combination_is_reported(router, mesh, tv):
    cable = ProductFactory(sku="RTR-2", name="Cable router")
    GroupFactory(name="Routers", products=[router, cable])
    RuleFactory(product=mesh, kind=Rule.Kind.REQUIRES, other=tv)
    RuleFactory(product=mesh, kind=Rule.Kind.QUANTITY, other=None, max_quantity=2)
    RuleFactory(product=cable, kind=Rule.Kind.EXCLUDES, other=mesh)

    result = validate_configuration(items=[(router, 1), (cable, 1), (mesh, 4)], language="en")

    assert sorted(v.rule for v in result.violations) == ["excludes", "group", "quantity", "requires"]
    assert set(messages(result)) == {
        "Mesh extender (MESH-1) requires TV box (TV-1); add TV box (TV-1) to the configuration.",
        "Mesh extender (MESH-1) allows a quantity of at most 2 (asked for 4).",
        "Cable router (RTR-2) cannot be combined with Mesh extender (MESH-1).",
        "Choose only one of “Routers”: Fibre router (RTR-1), Cable router (RTR-2).",
    }
    assert not result.valid


def test_validation_reads_a_fixed_number_of_queries(django_assert_max_num_queries, router, tv):
    products = [ProductFactory() for _ in range(12)]
    for first, second in itertools.pairwise(products):
        RuleFactory(product=first, kind=Rule.Kind.REQUIRES, other=second)
    customer = CustomerFactory()
    with django_assert_max_num_queries(9):
        validate_configuration(items=[(p, 1) for p in products[:3]], customer=customer, language="en")
    with django_assert_max_num_queries(9):
        validate_configuration(items=[(p, 1) for p in products], customer=customer, language="en")


def test_an_excludes_rule_on_an_owned_product_binds_the_other_way_too(router, tv):
    # The rule is written on the router the customer owns; the TV box is what they ask for.
    RuleFactory(product=router, kind=Rule.Kind.EXCLUDES, other=tv)
    customer = CustomerFactory()
    OwnedProductFactory(customer=customer, product=router)

    result = validate_configuration(items=[(tv, 1)], customer=customer, language="en")

    assert messages(result) == ["TV box (TV-1) cannot be combined with Fibre router (RTR-1), which the customer already owns."]
    assert result.violations[0].products == ("TV-1", "RTR-1")
    assert validate_configuration(items=[(tv, 1)], customer=CustomerFactory()).valid


def test_every_rule_kind_is_explained_in_polish_from_the_shipped_catalog():
    # No test catalog here: locale/pl as it ships must explain every kind of broken rule.
    router = ProductFactory(sku="RTR-1", name="Fibre router", texts={"pl": "Router światłowodowy"})
    cable = ProductFactory(sku="RTR-2", name="Cable router", texts={"pl": "Router kablowy"})
    mesh = ProductFactory(sku="MESH-1", name="Mesh extender", kind=Product.Kind.ADDON, texts={"pl": "Wzmacniacz Mesh"})
    tv = ProductFactory(sku="TV-1", name="TV box", texts={"pl": "Dekoder TV"})
    sim = ProductFactory(sku="SIM-1", name="SIM card", texts={"pl": "Karta SIM"}, markets=["GB"])
    GroupFactory(name="Routery", products=[router, cable])
    RuleFactory(product=mesh, kind=Rule.Kind.REQUIRES, other=tv)
    RuleFactory(product=cable, kind=Rule.Kind.EXCLUDES, other=sim)
    RuleFactory(product=mesh, kind=Rule.Kind.COMPATIBLE, other=tv)
    RuleFactory(product=router, kind=Rule.Kind.QUANTITY, other=None, min_quantity=2)
    RuleFactory(product=sim, kind=Rule.Kind.QUANTITY, other=None, max_quantity=1)

    result = validate_configuration(items=[(router, 1), (cable, 1), (mesh, 1), (sim, 3)], market="PL", language="pl")

    assert result.language == "pl"
    assert sorted(messages(result)) == sorted([
        "Wzmacniacz Mesh (MESH-1) wymaga Dekoder TV (TV-1); dodaj Dekoder TV (TV-1) do konfiguracji.",
        "Produktu Router kablowy (RTR-2) nie można łączyć z Karta SIM (SIM-1).",
        "Wzmacniacz Mesh (MESH-1) działa tylko z jednym z: Dekoder TV (TV-1).",
        "Router światłowodowy (RTR-1) wymaga ilości co najmniej 2 (żądano 1).",
        "Karta SIM (SIM-1) dopuszcza ilość co najwyżej 1 (żądano 3).",
        "Wybierz tylko jeden produkt z grupy „Routery”: Router światłowodowy (RTR-1), Router kablowy (RTR-2).",
        "Produkt Karta SIM (SIM-1) nie jest sprzedawany na rynku PL.",
    ])
    alone = validate_configuration(items=[(mesh, 1)], market="PL", language="pl")
    assert [v.rule for v in alone.violations] == ["base", "requires", "compatible"]
    assert messages(alone)[:1] == [
        "Wzmacniacz Mesh (MESH-1) jest opcją lub dodatkiem i wymaga produktu głównego w konfiguracji."
    ]
