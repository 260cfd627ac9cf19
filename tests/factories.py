"""factory_boy factories: the one way tests build data."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from channels_inbound.models import Channel
from channels_inbound.services import channel_create
from customers.models import Customer, Identity
from omnicenter.models import User
from tickets.models import Team, Ticket, TimelineEntry


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pass-1234")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            group, _ = Group.objects.get_or_create(name=extracted)
            self.groups.add(group)
            self.is_staff = extracted == "admin"
        self.save()

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        for team in extracted or []:
            team.members.add(self)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    display_name = factory.Faker("name")


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    customer = factory.SubFactory(CustomerFactory)
    kind = Identity.Kind.EMAIL
    value = factory.Sequence(lambda n: f"person{n}@example.org")


def make_channel(kind: str = "api", name: str = "Shop API", **kwargs) -> tuple[Channel, dict]:
    return channel_create(kind=kind, name=name, **kwargs)


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    subject = factory.Sequence(lambda n: f"Question {n}")
    customer = factory.SubFactory(CustomerFactory)


class EntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEntry

    ticket = factory.SubFactory(TicketFactory)
    kind = TimelineEntry.Kind.MESSAGE
    direction = TimelineEntry.Direction.INBOUND
    text = factory.Faker("sentence")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "customers.Organization"

    name = factory.Sequence(lambda n: f"Organization {n}")
