"""`manage.py demo_data`: a realistic, multilingual contact center to try Omnicenter with.

Idempotent: when the demo customers and the "Demo shop API" channel are there, it changes nothing and
only prints the logins. The rows are written directly with bulk inserts in one transaction, the way
the services would have left them (received inbound messages, delivery states, first response,
solved and closed times, versions), because running ~1,000 messages through the inbound spine would
take minutes on SQLite. Nothing is published live: nobody is watching a fresh demo database.
"""

from __future__ import annotations

import json
import random
import shlex
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_inbound import registry
from channels_inbound.models import Channel
from channels_inbound.services import channel_create
from customers.identities import normalize_phone
from customers.models import Customer, Identity, MergeSuggestion, Organization
from omnicenter import roles
from omnicenter.demo_content import (
    ACK,
    ASK,
    CALLBACK,
    CITIES,
    CLOSING,
    FAILURES,
    MAIL_DOMAIN,
    NOTES,
    ORGANIZATIONS,
    PEOPLE,
    PLANS,
    SALES,
    SUPPORT,
    TEXTS,
    THANKS,
    TOPIC_TAGS,
    TOPIC_TEAM,
    TOPICS,
    URGENT_TOPICS,
    VOICEMAIL,
)
from omnicenter.models import User
from omnicenter.services import user_set_role
from tickets.models import Tag, Team, Ticket, TicketThread, TimelineEntry

SEED = 42
DEMO_PASSWORD = "omnicenter-demo"  # noqa: S105 (documented in the README: demo logins only)
API_CHANNEL_NAME = "Demo shop API"
TICKET_COUNT = 220
DAYS = 60

K = Channel.Kind
E = TimelineEntry
S = Ticket.Status


@dataclass(frozen=True)
class StaffSpec:
    username: str
    first_name: str
    last_name: str
    language: str
    role: str
    teams: tuple[str, ...]


STAFF = (
    StaffSpec("admin", "Alex", "Morgan", "en", roles.ADMIN, ()),
    StaffSpec("supervisor", "Елена", "Соколова", "ru", roles.SUPERVISOR, (SUPPORT, SALES)),
    StaffSpec("anna", "Anna", "Nowicka", "pl", roles.AGENT, (SUPPORT,)),
    StaffSpec("piotr", "Piotr", "Kaczmarek", "pl", roles.AGENT, (SUPPORT,)),
    StaffSpec("dmitry", "Дмитрий", "Орлов", "ru", roles.AGENT, (SUPPORT,)),
    StaffSpec("olga", "Ольга", "Петрова", "ru", roles.AGENT, (SALES,)),
    StaffSpec("james", "James", "Carter", "en", roles.AGENT, (SALES,)),
)

# Kinds without an adapter yet: plain rows marked as demo, so timelines can show every channel.
DEMO_CHANNELS = (
    (K.EMAIL, "Email (demo)", SUPPORT, {"address": "support@omnicenter.example"}),
    (K.SMS, "SMS (demo)", SUPPORT, {"phone_number": "+447700900100"}),
    (K.WHATSAPP, "WhatsApp (demo)", SUPPORT, {"phone_number": "+447700900101"}),
    (K.VOICE, "Voice (demo)", SUPPORT, {"phone_number": "+447700900102"}),
    (K.TELEGRAM, "Telegram (demo)", SUPPORT, {}),
    (K.MESSENGER, "Messenger (demo)", SALES, {"page_id": "100000000000042"}),
    (K.WEBCHAT, "Web chat (demo)", SALES, {"allowed_origins": ["http://127.0.0.1:8000"]}),
)

# Which identity a channel kind reaches the customer on.
IDENTITY_FOR = {
    K.EMAIL: "email", K.SMS: "phone", K.WHATSAPP: "phone", K.VOICE: "phone", K.TELEGRAM: "telegram",
    K.MESSENGER: "messenger", K.WEBCHAT: "visitor", K.API: "external",
}
ORIGIN_WEIGHTS = {
    K.EMAIL: 30, K.WEBCHAT: 16, K.WHATSAPP: 14, K.TELEGRAM: 12, K.SMS: 8, K.MESSENGER: 8, K.VOICE: 6, K.API: 6,
}
READ_RECEIPTS = {K.WHATSAPP, K.TELEGRAM, K.MESSENGER, K.WEBCHAT}


TRANSLIT = str.maketrans({
    "ł": "l", "Ł": "L", "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
    "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
})


def ascii_slug(text: str) -> str:
    text = text.lower().translate(TRANSLIT)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def organization_domain(last: str) -> str | None:
    return next((domain for _name, domain, members in ORGANIZATIONS if last in members), None)


def demo_email(language: str, first: str, last: str) -> str:
    return f"{ascii_slug(first)}.{ascii_slug(last)}@{organization_domain(last) or MAIL_DOMAIN[language]}"


@dataclass
class Person:
    language: str
    country: str
    first: str
    last: str
    customer: Customer
    identities: dict[str, Identity] = field(default_factory=dict)
    claims: list[Identity] = field(default_factory=list)  # unverified, never used to reach them

    @property
    def all_identities(self) -> list[Identity]:
        return [*self.identities.values(), *self.claims]

    def reachable_kinds(self) -> list[str]:
        kinds = [kind for kind, key in IDENTITY_FOR.items() if key in self.identities]
        return [*kinds, K.API] if K.API not in kinds else kinds

    def identity_for(self, kind: str) -> Identity:
        return self.identities.get(IDENTITY_FOR[kind]) or self.identities["email"]


@dataclass
class PlannedTicket:
    ticket: Ticket
    created_at: datetime
    entries: list[tuple[TimelineEntry, datetime]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    thread: tuple[Channel, str] | None = None


class Planner:
    """Builds every demo row in memory, deterministically from SEED, relative to `now`."""

    def __init__(self, *, now: datetime, channels: dict[str, Channel], users: dict[str, User],
                 teams: dict[str, Team], taken: set[tuple[str, str, str]] | None = None):
        self.rng = random.Random(SEED)
        self.now = now
        self.channels = channels
        self.users = users
        self.teams = teams
        self.taken = taken or set()
        self.serial = 0
        self.phones: set[str] = set()
        self.failures_left = 2
        self.team_agents = {
            name: [users[s.username] for s in STAFF if name in s.teams and s.role == roles.AGENT] for name in teams
        }

    # Customers ------------------------------------------------------------------------------
    def people(self) -> tuple[list[Organization], list[Person]]:
        organizations = {domain: Organization(name=name, domain=domain) for name, domain, _members in ORGANIZATIONS}
        people = [
            self._person(language, country, first, last, organizations.get(organization_domain(last) or ""))
            for language, rows in PEOPLE.items() for first, last, country in rows
        ]
        return list(organizations.values()), people + self._duplicates(people)

    def _person(self, language: str, country: str, first: str, last: str, organization: Organization | None) -> Person:
        rng = self.rng
        name = f"{first} {last}"
        stage = (Customer.Stage.PARTNER if rng.random() < 0.3 else Customer.Stage.CUSTOMER) if organization else (
            rng.choices([Customer.Stage.CUSTOMER, Customer.Stage.PROSPECT], weights=[3, 1])[0]
        )
        attributes = {}
        if organization is not None or rng.random() < 0.7:
            attributes["plan"] = "Business" if organization else rng.choice(PLANS)
            attributes["city"] = rng.choice(CITIES[country])
        customer = Customer(display_name=name, language=language, lifecycle_stage=stage, attributes=attributes,
                            organization=organization)
        person = Person(language=language, country=country, first=first, last=last, customer=customer)
        self._add(person, "email", Identity.Kind.EMAIL, demo_email(language, first, last))
        if rng.random() < {"pl": 0.85, "ru": 0.8, "en": 0.7}[language]:
            self._add(person, "phone", Identity.Kind.PHONE, self._phone(country))
        if rng.random() < {"pl": 0.15, "ru": 0.5, "en": 0.1}[language]:
            self._add(person, "telegram", Identity.Kind.TELEGRAM, str(rng.randint(10**9, 7 * 10**9)),
                      display=f"@{ascii_slug(first)}_{ascii_slug(last)[:3]}")
        if rng.random() < {"pl": 0.25, "ru": 0.05, "en": 0.3}[language]:
            self._add(person, "messenger", Identity.Kind.MESSENGER, str(rng.randint(10**15, 10**16 - 1)),
                      namespace=self.channels[K.MESSENGER].key)
        if rng.random() < 0.3:
            self._add(person, "visitor", Identity.Kind.VISITOR, f"v_{rng.getrandbits(64):016x}",
                      namespace=self.channels[K.WEBCHAT].key)
        if rng.random() < 0.2:
            self._add(person, "external", Identity.Kind.EXTERNAL, f"crm-{rng.randint(10000, 99999)}",
                      namespace=self.channels[K.API].key)
        return person

    def _add(self, person: Person, key: str, kind: str, value: str, *, namespace: str = "", display: str = "") -> None:
        if (kind, namespace, value) in self.taken:
            return  # someone real already owns it (production database): leave it out
        person.identities[key] = Identity(
            customer=person.customer, kind=kind, namespace=namespace, value=value, verified=True,
            display_name=display or person.customer.display_name,
        )

    def _phone(self, country: str) -> str:
        rng = self.rng
        while True:
            if country == "PL":
                raw = f"+48 {rng.choice('5678')}{rng.randint(10**7, 10**8 - 1)}"
            elif country == "RU":
                raw = f"+7 9{rng.randint(10**8, 10**9 - 1)}"
            elif country == "GB":
                raw = f"+44 7700 900{rng.randint(0, 999):03d}"  # Ofcom's range for fiction
            else:
                raw = f"+1 {rng.choice(['212', '617', '312', '206'])} 555 01{rng.randint(0, 99):02d}"
            phone = normalize_phone(raw)
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def _duplicates(self, people: list[Person]) -> list[Person]:
        """Two people who wrote once more under another address and typed the phone of an existing
        customer into the chat: the resolver suggests a merge and never merges by itself."""
        extra = []
        for original, (first, last) in zip(
            [p for p in people if p.language == "pl"][:1] + [p for p in people if p.language == "ru"][:1],
            [("Kasia", "Kowalska"), ("Ваня", "Иванов")], strict=True,
        ):
            if "phone" not in original.identities:
                self._add(original, "phone", Identity.Kind.PHONE, self._phone(original.country))
            duplicate = Person(
                language=original.language, country=original.country, first=first, last=last,
                customer=Customer(display_name=f"{first} {last}", language=original.language),
            )
            self._add(duplicate, "email", Identity.Kind.EMAIL,
                      f"{ascii_slug(first)}.{ascii_slug(last)[0]}{self.rng.randint(10, 99)}@{MAIL_DOMAIN[original.language]}")
            self._add(duplicate, "visitor", Identity.Kind.VISITOR, f"v_{self.rng.getrandbits(64):016x}",
                      namespace=self.channels[K.WEBCHAT].key)
            if "phone" in original.identities:
                duplicate.claims.append(Identity(
                    customer=duplicate.customer, kind=Identity.Kind.PHONE, value=original.identities["phone"].value,
                    verified=False, display_name=duplicate.customer.display_name,
                ))
            extra.append(duplicate)
        # A few chat visitors typed an email address: kept as unverified claims of their own.
        for person in [p for p in people if "visitor" in p.identities][:4]:
            person.claims.append(Identity(
                customer=person.customer, kind=Identity.Kind.EMAIL, verified=False,
                value=f"{ascii_slug(person.first)}{self.rng.randint(1, 99)}@inbox.example",
                display_name=person.customer.display_name,
            ))
        return extra

    # Tickets --------------------------------------------------------------------------------
    def tickets(self, people: list[Person]) -> list[PlannedTicket]:
        rng = self.rng
        owners = list(people) + [rng.choice(people[:60] or people) for _ in range(TICKET_COUNT - len(people))]
        planned = [self._ticket(person) for person in owners]
        planned.sort(key=lambda p: p.created_at)
        return planned

    def _status_for(self, age: timedelta) -> str:
        roll = self.rng.random()
        if age > timedelta(days=20):
            return S.CLOSED if roll < 0.75 else S.SOLVED
        if age > timedelta(days=7):
            return [S.SOLVED, S.CLOSED, S.PENDING, S.OPEN][int(roll * 4)]
        return S.NEW if roll < 0.25 else S.OPEN if roll < 0.6 else S.PENDING if roll < 0.85 else S.SOLVED

    def _ticket(self, person: Person) -> PlannedTicket:
        rng = self.rng
        lang = person.language
        topic = rng.choice(TOPICS)
        subject, message, follow_up, answer = TEXTS[lang][topic]
        order = str(rng.randint(100000, 999999))

        def fill(text: str) -> str:
            return text.format(order=order, name=person.first)

        # Busier lately: most of the open work is recent, the old tickets are mostly closed.
        roll = rng.random()
        age = timedelta(days=rng.uniform(0.015, 7) if roll < 0.45 else rng.uniform(7, 20) if roll < 0.65 else rng.uniform(20, DAYS))
        created = self.now - age
        status = self._status_for(age)
        team_name = TOPIC_TEAM.get(topic, SUPPORT)
        agents = self.team_agents[team_name]
        assigned = rng.random() < (0.2 if status == S.NEW else 0.9)
        assignee = rng.choice(agents) if assigned else None
        actor = assignee or rng.choice(agents)
        supervisor = self.users["supervisor"]
        kinds = person.reachable_kinds()
        first = rng.choices(kinds, weights=[ORIGIN_WEIGHTS[k] for k in kinds])[0]

        def other(kind: str) -> str:
            """Often another channel the customer is reachable on; never from a voicemail by voice."""
            choices = [k for k in kinds if k not in (kind, K.VOICE, K.API)]
            switch = kind == K.VOICE or rng.random() < 0.6
            return rng.choice(choices) if choices and switch else kind

        # Steps: ("in"|"out"|"callback"|"note"|"event", channel kind or event data, text, author)
        steps: list[tuple] = [("in", first, fill(message), None)]
        if assignee is not None:
            by = assignee if rng.random() < 0.5 else supervisor
            steps.append(("event", {"action": "assignee", "from": None, "to": assignee.pk}, "", by))
        priority = rng.choices(list(Ticket.PRIORITY_RANK), weights=[15, 55, 22, 8])[0]
        if topic in URGENT_TOPICS and rng.random() < 0.3:
            priority = Ticket.Priority.URGENT
        if priority in (Ticket.Priority.HIGH, Ticket.Priority.URGENT) and rng.random() < 0.4:
            steps.append(("event", {"action": "priority", "from": Ticket.Priority.NORMAL, "to": priority}, "", supervisor))
        if rng.random() < 0.25:
            steps.append(("note", None, rng.choice(NOTES), actor))
        last_in = first
        if status == S.NEW:
            if rng.random() < 0.4:
                steps.append(("in", other(first), fill(follow_up), None))
        else:
            reply_kind = other(last_in) if last_in == K.VOICE or rng.random() < 0.4 else last_in
            reopened = status == S.OPEN and rng.random() < 0.15
            exchange = not reopened and (status == S.OPEN or rng.random() < 0.5)
            # With a second exchange ahead, the first reply only acknowledges; the answer comes later.
            first_reply = rng.choice(ACK[lang]) if exchange else answer
            steps.append(("out", reply_kind, fill(first_reply), actor))
            if "phone" in person.identities and rng.random() < 0.12:
                steps.append(("callback", K.VOICE, CALLBACK[lang], actor))
            if reopened:
                # Solved too early: the customer wrote again and the ticket reopened by itself.
                last_in = other(last_in)
                steps += [
                    ("event", {"action": "status", "from": S.OPEN, "to": S.SOLVED}, "", actor),
                    ("in", last_in, fill(follow_up), None),
                    ("event", {"action": "reopened", "from": S.SOLVED, "to": S.OPEN}, "", None),
                ]
            elif exchange:
                last_in = other(last_in)
                steps.append(("in", last_in, fill(follow_up), None))
                if status != S.OPEN or rng.random() < 0.5:
                    text = rng.choice(ASK[lang]) if status == S.PENDING else answer
                    steps.append(("out", last_in, fill(text), actor))
            if status == S.PENDING:
                steps.append(("event", {"action": "status", "from": S.OPEN, "to": S.PENDING}, "", actor))
            elif status in (S.SOLVED, S.CLOSED):
                if rng.random() < 0.6:
                    steps.append(("in", last_in, rng.choice(THANKS[lang]), None))
                    if rng.random() < 0.4:
                        steps.append(("out", last_in, fill(CLOSING[lang]), actor))
                steps.append(("event", {"action": "status", "from": S.OPEN, "to": S.SOLVED}, "", actor))
                if status == S.CLOSED:
                    steps.append(("event", {"action": "status", "from": S.SOLVED, "to": S.CLOSED}, "", None))

        span = {
            S.NEW: timedelta(minutes=rng.uniform(5, 360)),
            S.OPEN: timedelta(hours=rng.uniform(0.3, 96)),
            S.PENDING: timedelta(hours=rng.uniform(0.5, 96)),
            S.SOLVED: timedelta(hours=rng.uniform(1, 120)),
            S.CLOSED: timedelta(days=rng.uniform(3, 10)),
        }[status]
        end = min(created + span, self.now - timedelta(minutes=2))
        offsets = sorted(rng.random() for _ in range(len(steps) - 1))
        times = [created] + [created + (end - created) * o for o in offsets]

        ticket = Ticket(
            customer=person.customer, status=status, priority=priority, team=self.teams[team_name],
            assignee=assignee, origin_channel=self.channels[first],
            subject=fill(subject) if first in (K.EMAIL, K.API) else (
                f"{VOICEMAIL[lang]}: {fill(message)}" if first == K.VOICE else fill(message)
            ).splitlines()[0][:120],
        )
        plan = PlannedTicket(ticket=ticket, created_at=created, tags=list(TOPIC_TAGS[topic]))
        if person.customer.attributes.get("plan") == "Business" and rng.random() < 0.5:
            plan.tags.append("vip")
        for step, at in zip(steps, times, strict=True):
            self._entry(plan, person, step, at)
        if first in (K.EMAIL, K.API):
            first_entry = plan.entries[0][0]
            key = first_entry.provider_message_id if first == K.EMAIL else f"order-{order}"
            plan.thread = (self.channels[first], key)
        self._finish(plan, status)
        return plan

    def _provider_id(self, kind: str, person: Person, direction: str) -> str:
        self.serial += 1
        n = self.serial
        if kind == K.EMAIL:
            domain = "omnicenter.example" if direction == E.Direction.OUTBOUND else person.identities["email"].value.split("@")[1]
            return f"<demo.{n}.{self.rng.getrandbits(32):08x}@{domain}>"
        if kind in (K.SMS, K.WHATSAPP):
            return f"SM{self.rng.getrandbits(128):032x}"
        if kind == K.VOICE:
            return f"CA{self.rng.getrandbits(128):032x}"
        if kind == K.MESSENGER:
            return f"m_demo{n}{self.rng.getrandbits(48):012x}"
        if kind == K.TELEGRAM:
            return f"demo-{n}"
        return f"demo-{kind}-{n}"

    def _entry(self, plan: PlannedTicket, person: Person, step: tuple, at: datetime) -> None:
        what, kind, text, author = step
        ticket = plan.ticket
        if what == "event":
            entry = TimelineEntry(ticket=ticket, kind=E.Kind.EVENT, author_user=author, data=kind)
        elif what == "note":
            entry = TimelineEntry(ticket=ticket, kind=E.Kind.NOTE, author_user=author, text=text)
        elif what == "in":
            identity = person.identity_for(kind)
            identity.last_seen_at = max(identity.last_seen_at or at, at)
            is_call = kind == K.VOICE
            entry = TimelineEntry(
                ticket=ticket, kind=E.Kind.CALL if is_call else E.Kind.MESSAGE, direction=E.Direction.INBOUND,
                channel=self.channels[kind], identity=identity, author_customer=person.customer,
                text=f"{VOICEMAIL[person.language]}: {text}" if is_call else text,
                provider_message_id=self._provider_id(kind, person, E.Direction.INBOUND),
                delivery_status=E.Delivery.RECEIVED,
                data={"duration": self.rng.randint(20, 90), "voicemail": True} if is_call else {},
            )
        elif what == "callback":
            entry = TimelineEntry(
                ticket=ticket, kind=E.Kind.CALL, direction=E.Direction.OUTBOUND, channel=self.channels[K.VOICE],
                identity=person.identities["phone"], author_user=author, text=text,
                provider_message_id=self._provider_id(K.VOICE, person, E.Direction.OUTBOUND),
                data={"duration": self.rng.randint(60, 600), "status": "completed"},
            )
        else:
            self._outbound(plan, person, kind, text, author, at)
            return
        plan.entries.append((entry, at))

    def _outbound(self, plan: PlannedTicket, person: Person, kind: str, text: str, author: User, at: datetime) -> None:
        rng = self.rng
        entry = TimelineEntry(
            ticket=plan.ticket, kind=E.Kind.MESSAGE, direction=E.Direction.OUTBOUND, channel=self.channels[kind],
            identity=person.identity_for(kind), author_user=author, text=text, delivery_attempts=1,
            status_changed_at=at,
        )
        if kind in FAILURES and self.failures_left and rng.random() < 0.3:
            self.failures_left -= 1
            entry.delivery_status = E.Delivery.FAILED
            entry.delivery_error = FAILURES[kind]
            plan.entries.append((entry, at))
            # The agent sent the same answer again by email, where it arrived.
            resent_at = min(at + timedelta(seconds=rng.randint(60, 300)), self.now - timedelta(seconds=30))
            self._outbound(plan, person, K.EMAIL, text, author, resent_at)
            return
        entry.provider_message_id = self._provider_id(kind, person, E.Direction.OUTBOUND)
        entry.sent_at = at + timedelta(seconds=rng.randint(1, 20))
        recent = self.now - at < timedelta(minutes=15)
        roll = rng.random()
        if recent or roll < 0.1:
            entry.delivery_status = E.Delivery.SENT
        elif kind in READ_RECEIPTS and roll < 0.75:
            entry.delivery_status = E.Delivery.READ
            entry.delivered_at = entry.sent_at + timedelta(seconds=rng.randint(1, 30))
            entry.read_at = min(entry.delivered_at + timedelta(minutes=rng.randint(1, 240)), self.now)
        else:
            entry.delivery_status = E.Delivery.DELIVERED
            entry.delivered_at = entry.sent_at + timedelta(seconds=rng.randint(1, 60))
        entry.status_changed_at = entry.read_at or entry.delivered_at or entry.sent_at
        plan.entries.append((entry, at))

    @staticmethod
    def _finish(plan: PlannedTicket, status: str) -> None:
        """Ticket fields as the services would have left them after these entries."""
        ticket = plan.ticket
        public = [(e, at) for e, at in plan.entries if e.kind in (E.Kind.MESSAGE, E.Kind.CALL)]
        ticket.last_message_at = max(at for _e, at in public)
        replies = [at for e, at in public if e.direction == E.Direction.OUTBOUND]
        ticket.first_response_at = min(replies) if replies else None
        for entry, at in plan.entries:
            if entry.kind == E.Kind.EVENT and entry.data.get("action") == "status":
                if entry.data["to"] == S.SOLVED:
                    ticket.solved_at = at
                elif entry.data["to"] == S.CLOSED:
                    ticket.closed_at = at
            elif entry.kind == E.Kind.EVENT and entry.data.get("action") == "reopened":
                ticket.solved_at = None
        # One version for the creation, one bump per later entry, one for the tags.
        ticket.version = len(plan.entries) + (1 if plan.tags else 0)


class Command(BaseCommand):
    help = "Load demo users, channels, customers and tickets (idempotent), then print the logins."

    def handle(self, *args, **options):
        api_channel = Channel.objects.filter(kind=K.API, name=API_CHANNEL_NAME).first()
        demo_emails = self._demo_emails()
        present = Identity.objects.filter(kind=Identity.Kind.EMAIL, verified=True, value__in=demo_emails).count()
        created_users: set[str] | None = None  # None: nothing was written, the demo users are as created
        if api_channel is None or present == 0:
            with transaction.atomic():
                teams, users, created_users = self._staff()
                channels = self._channels(teams)
                api_channel = channels[K.API]
                if present == 0:
                    summary = self._customers_and_tickets(channels, users, teams)
                    self.stdout.write(self.style.SUCCESS(_(
                        "Demo data created: %(customers)s customers, %(tickets)s tickets, %(entries)s timeline entries."
                    ) % summary))
        else:
            self.stdout.write(_("Demo data is already loaded; nothing changed."))
        self._knowledge()
        self._print_logins(created_users)
        self._print_api_channel(api_channel)

    def _knowledge(self) -> None:
        """Demo knowledge-base articles (knowledge/demo.py), idempotent on their slugs."""
        from knowledge.demo import load_demo_articles

        created = load_demo_articles(by=User.objects.filter(username="admin").first())
        if created:
            self.stdout.write(self.style.SUCCESS(_("Demo knowledge base: %(n)s articles at /help/.") % {"n": created}))

    @staticmethod
    def _demo_emails() -> list[str]:
        """Every demo person's email: enough to recognize demo data without writing anything."""
        return [demo_email(language, first, last) for language, rows in PEOPLE.items() for first, last, _c in rows]

    def _staff(self) -> tuple[dict[str, Team], dict[str, User], set[str]]:
        teams = {name: Team.objects.get_or_create(name=name)[0] for name in (SUPPORT, SALES)}
        existing = {u.username: u for u in User.objects.filter(username__in=[s.username for s in STAFF])}
        password = None
        users, created = {}, set()
        for spec in STAFF:
            user = existing.get(spec.username)
            if user is None:
                # One hash for the shared demo password: hashing is the slowest part of a fresh start.
                password = password or make_password(DEMO_PASSWORD)
                user = User.objects.create(
                    username=spec.username, first_name=spec.first_name, last_name=spec.last_name,
                    email=f"{spec.username}@omnicenter.example", language=spec.language, password=password,
                    is_superuser=spec.role == roles.ADMIN,
                )
                user_set_role(user=user, role=spec.role)
                created.add(spec.username)
            users[spec.username] = user
        # Through rows, not members.add(): that would announce membership changes live.
        Team.members.through.objects.bulk_create(
            [Team.members.through(team=teams[name], user=users[s.username]) for s in STAFF for name in s.teams],
            ignore_conflicts=True,
        )
        return teams, users, created

    def _channels(self, teams: dict[str, Team]) -> dict[str, Channel]:
        channels = {}
        api = Channel.objects.filter(kind=K.API, name=API_CHANNEL_NAME).first()
        if api is None:
            api, _generated = channel_create(kind=K.API, name=API_CHANNEL_NAME, default_team=teams[SUPPORT])
        channels[K.API] = api
        for kind, name, team, settings_data in DEMO_CHANNELS:
            channels[kind] = Channel.objects.get_or_create(
                kind=kind, name=name,
                defaults={"settings": {**settings_data, "demo": True}, "default_team": teams[team]},
            )[0]
        return channels

    def _customers_and_tickets(self, channels: dict[str, Channel], users: dict[str, User],
                               teams: dict[str, Team]) -> dict[str, int]:
        now = timezone.now()
        planner = Planner(now=now, channels=channels, users=users, teams=teams)
        organizations, people = planner.people()
        # Verified identities are unique: leave out any a real customer already holds.
        candidates = [i for p in people for i in p.identities.values()]
        taken = set(
            Identity.objects.filter(verified=True, value__in=[i.value for i in candidates])
            .values_list("kind", "namespace", "value")
        )
        if taken:
            planner = Planner(now=now, channels=channels, users=users, teams=teams, taken=taken)
            organizations, people = planner.people()
        planned = planner.tickets(people)

        Organization.objects.bulk_create(organizations)
        customers = Customer.objects.bulk_create([p.customer for p in people])
        Identity.objects.bulk_create([i for p in people for i in p.all_identities])
        tickets = Ticket.objects.bulk_create([p.ticket for p in planned])
        entries = TimelineEntry.objects.bulk_create([e for p in planned for e, _at in p.entries], batch_size=1000)

        tag_names = sorted({name for p in planned for name in p.tags})
        Tag.objects.bulk_create([Tag(name=name) for name in tag_names], ignore_conflicts=True)
        tag_ids = dict(Tag.objects.filter(name__in=tag_names).values_list("name", "pk"))
        Ticket.tags.through.objects.bulk_create(
            [Ticket.tags.through(ticket=p.ticket, tag_id=tag_ids[name]) for p in planned for name in p.tags]
        )
        TicketThread.objects.bulk_create(
            [TicketThread(channel=p.thread[0], customer=p.ticket.customer, key=p.thread[1], ticket=p.ticket) for p in planned if p.thread]
        )
        phone_holders = {p.identities["phone"].value: p.customer for p in people if "phone" in p.identities}
        suggestions = []
        for person in people:
            for claim in person.claims:
                holder = phone_holders.get(claim.value) if claim.kind == Identity.Kind.PHONE else None
                if holder is not None:
                    first, second = sorted([holder, person.customer], key=lambda c: c.pk)
                    suggestions.append(MergeSuggestion(
                        customer=first, other=second,
                        reason=f"phone {claim.value} belongs to another customer than a message's other identities",
                    ))
        MergeSuggestion.objects.bulk_create(suggestions)

        # auto_now_add ignores given values: put the history back in the past afterwards.
        for p in planned:
            p.ticket.created_at = p.created_at
            p.ticket.updated_at = max(at for _e, at in p.entries)
            for entry, at in p.entries:
                entry.created_at = at
        first_contact: dict[int, datetime] = {}
        for p in planned:
            first_contact.setdefault(p.ticket.customer_id, p.created_at)
        for customer in customers:
            since = first_contact.get(customer.pk, now) - timedelta(days=planner.rng.randint(1, 400))
            customer.created_at = customer.updated_at = since
        Ticket.objects.bulk_update(tickets, ["created_at", "updated_at"], batch_size=500)
        TimelineEntry.objects.bulk_update(entries, ["created_at"], batch_size=500)
        Customer.objects.bulk_update(customers, ["created_at", "updated_at"], batch_size=500)
        return {"customers": len(customers), "tickets": len(tickets), "entries": len(entries)}

    def _print_logins(self, created_users: set[str] | None) -> None:
        users = {
            u.username: u
            for u in User.objects.filter(username__in=[s.username for s in STAFF]).prefetch_related("groups", "teams")
        }
        rows = [(_("username"), _("role"), _("teams"), _("password"))]
        for spec in STAFF:
            user = users.get(spec.username)
            if user is None:
                continue
            fresh = created_users is None or spec.username in created_users
            rows.append((
                user.username, roles.role_of(user) or "-", ", ".join(sorted(t.name for t in user.teams.all())) or "-",
                DEMO_PASSWORD if fresh else _("(unchanged)"),
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(_("Demo logins (sign in at /app/, admins also at /admin/):")))
        for index, row in enumerate(rows):
            line = "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write(self.style.MIGRATE_LABEL(line) if index == 0 else line)
        self.stdout.write(_("Users that existed before the demo data keep their own password."))

    def _print_api_channel(self, channel: Channel | None) -> None:
        if channel is None:
            return
        adapter = registry.adapter_for(channel.kind)
        url = adapter.webhook_urls(channel)["inbound"] if adapter else ""
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING(_("API channel “%(name)s”:") % {"name": channel.name}))
        self.stdout.write(f"  key: {channel.key}")
        self.stdout.write(f"  inbound URL: {url}")
        try:
            secret = channel.secret("secret")
        except ImproperlyConfigured:
            self.stdout.write(_("  Its secret cannot be decrypted with the current FIELD_ENCRYPTION_KEYS."))
            return
        payload = {
            "id": "demo-curl-1",
            "from": {"name": "Jan Nowak", "email": "jan.nowak@poczta.example"},
            "text": "Dzień dobry, kiedy dotrze moja paczka?",
        }
        self.stdout.write(_("  Send a message as a customer (change the id for a new message):"))
        self.stdout.write(
            f"  curl -X POST {shlex.quote(url)} -H {shlex.quote('Authorization: Bearer ' + secret)} "
            f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(payload, ensure_ascii=False))}"
        )
