from __future__ import annotations

import re

from django.db.models import Exists, OuterRef, Q, QuerySet

from customers.models import Customer, Identity


def customers_active() -> QuerySet[Customer]:
    return Customer.objects.filter(merged_into__isnull=True).select_related("organization")


def customer_search(queryset: QuerySet[Customer], term: str) -> QuerySet[Customer]:
    """Name, email or phone; a phone typed with spaces or dashes still matches its E.164 form."""
    term = term.strip()
    if not term:
        return queryset
    identity_match = Q(value__icontains=term.lower())
    digits = re.sub(r"\D", "", term)
    if len(digits) >= 4:
        identity_match |= Q(kind=Identity.Kind.PHONE, value__contains=digits)
    matching = Identity.objects.filter(identity_match, customer=OuterRef("pk"))
    return queryset.filter(Q(display_name__icontains=term) | Exists(matching))
