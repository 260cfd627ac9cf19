"""Small helpers for knowledge templates."""

from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag
def category_name(category, language: str) -> str:
    return category.name_in(language)


@register.filter
def get_item(mapping: dict, key):
    """Snippets are built escaped by knowledge.search (only <mark> added), so they are safe."""
    return mark_safe(mapping.get(key, ""))  # noqa: S308 - escaped by knowledge.search._marked
