from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`{"count", "next", "previous", "results"}`; `?page=` and `?page_size=` (at most 200)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class SearchPagination(Pagination):
    """The knowledge base's and the catalog's APIs: bots, channels and agents read the best few
    hits, and each item costs a snippet or a product's texts to build, so 20 a page by default
    rather than 50 (``?page_size=`` still goes up to 200; docs/api.md)."""

    page_size = 20
