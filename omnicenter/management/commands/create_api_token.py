from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from omnicenter import roles
from omnicenter.models import ApiToken
from omnicenter.services import InvalidTokenScopes, api_token_create


class Command(BaseCommand):
    help = (
        "Create a named API token for USERNAME and print its key (shown this once; stored hashed). "
        "Limit what it may use with --scope (repeatable or comma-separated); without it, every scope."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for (default: cli)")
        parser.add_argument("--read-only", action="store_true", help="the token may only read")
        parser.add_argument(
            "--scope", action="append", default=[], dest="scopes", metavar="SCOPE",
            help="a part of the API the token may use: " + ", ".join(ApiToken.Scope.values),
        )
        parser.add_argument("--all-scopes", action="store_true", help="every scope (the default without --scope)")

    def handle(self, *args, username: str, name: str, read_only: bool, scopes: list[str], all_scopes: bool, **options):
        if all_scopes and scopes:
            raise CommandError("Give either --scope or --all-scopes, not both.")
        # Without --scope, every scope: `create_api_token USERNAME [--name] [--read-only]` is the
        # documented contract (DESIGN.md) and keeps meaning what it meant before scopes existed.
        given = [s.strip() for arg in scopes for s in arg.split(",")]
        if scopes and not any(given):
            raise CommandError(f"--scope needs a value: one of {', '.join(ApiToken.Scope.values)}.")
        scopes = [s for s in given if s] or list(ApiToken.Scope.values)
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active or not roles.is_agent(user):
            raise CommandError(f"{username!r} is not an active agent, supervisor or admin; the token would be useless.")
        try:
            token, key = api_token_create(user=user, name=name or "cli", scopes=scopes, read_only=read_only)
        except InvalidTokenScopes as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(key)
        access = "read-only" if read_only else "read and write"
        self.stderr.write(f"Token {token.name!r} ({access}; scopes: {', '.join(token.scopes)}) for {username}.")
