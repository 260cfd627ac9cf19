"""A tsvector column that also exists (as unused text) on SQLite, so one migration serves both."""

from __future__ import annotations

from django.db import models


class SearchVectorField(models.Field):
    description = "PostgreSQL tsvector (text placeholder elsewhere)"

    def db_type(self, connection) -> str:
        return "tsvector" if connection.vendor == "postgresql" else "text"
