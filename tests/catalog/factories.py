"""factory_boy factories for the catalog (the one way catalog tests build data)."""

from __future__ import annotations

from decimal import Decimal

import factory

from catalog.models import ExclusiveGroup, Offer, OwnedProduct, Product, ProductPrice, ProductText, Rule
from catalog.search import search_words_add
from tests.factories import CustomerFactory


class ProductFactory(factory.django.DjangoModelFactory):
    """An active product with an English text and a price in PL; ``texts={"ru": "Имя"}`` adds names."""

    class Meta:
        model = Product
        skip_postgeneration_save = True

    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    status = Product.Status.ACTIVE

    @factory.post_generation
    def name(self, create, extracted, **kwargs):
        text = ProductText.objects.create(product=self, language="en", name=extracted or f"Product {self.sku}",
                                          description=kwargs.get("description", ""))
        search_words_add([text.name, text.description])

    @factory.post_generation
    def texts(self, create, extracted, **kwargs):
        for language, name in (extracted or {}).items():
            ProductText.objects.create(product=self, language=language, name=name)
            search_words_add([name])

    @factory.post_generation
    def markets(self, create, extracted, **kwargs):
        for market in ("PL",) if extracted is None else extracted:
            ProductPrice.objects.create(product=self, market=market, currency="PLN" if market == "PL" else "EUR",
                                        amount=Decimal("10.00"))


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    product = factory.SubFactory(ProductFactory)
    kind = Rule.Kind.REQUIRES
    other = factory.SubFactory(ProductFactory)


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExclusiveGroup
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Group {n}")

    @factory.post_generation
    def products(self, create, extracted, **kwargs):
        self.products.set(extracted or [])


class OwnedProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OwnedProduct

    customer = factory.SubFactory(CustomerFactory)
    product = factory.SubFactory(ProductFactory)
    reference = factory.Sequence(lambda n: f"SN-{n:06d}")
    status = OwnedProduct.Status.ACTIVE


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"OFFER-{n}")
    name = factory.Sequence(lambda n: f"Offer {n}")

    @factory.post_generation
    def requires_owned(self, create, extracted, **kwargs):
        self.requires_owned.set(extracted or [])

    @factory.post_generation
    def excludes_owned(self, create, extracted, **kwargs):
        self.excludes_owned.set(extracted or [])
