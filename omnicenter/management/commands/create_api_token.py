from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from omnicenter import roles
from omnicenter.services import api_token_create


class Command(BaseCommand):
    help = "Create a named API token for USERNAME and print its key (shown this once; stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for (default: cli)")
        parser.add_argument("--read-only", action="store_true", help="the token may only read")

    def handle(self, *args, username: str, name: str, read_only: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active or not roles.is_agent(user):
            raise CommandError(f"{username!r} is not an active agent, supervisor or admin; the token would be useless.")
        token, key = api_token_create(user=user, name=name or "cli", read_only=read_only)
        self.stdout.write(key)
        self.stderr.write(f"Token {token.name!r} ({'read-only' if read_only else 'full access'}) for {username}.")
