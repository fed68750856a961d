"""Create an API token for a user (shown once, stored hashed), list a user's tokens, or revoke them."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken
from knox.settings import knox_settings


class Command(BaseCommand):
    help = "Create an API token for USER (printed once; only its hash is stored). --list and --revoke manage tokens."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--list", action="store_true", help="List the user's tokens by their public prefix.")
        parser.add_argument(
            "--days",
            type=float,
            help="Days until the token expires (default FINELINE_API_TOKEN_DAYS; 0: never).",
        )
        parser.add_argument(
            "--revoke", metavar="PREFIX", help="Revoke the token whose public prefix is PREFIX ('all' for every one)."
        )

    def handle(self, username, list, revoke, days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        tokens = AuthToken.objects.filter(user=user)
        if list:
            for token in tokens.order_by("created"):
                expires = f"expires {token.expiry:%Y-%m-%d %H:%M}" if token.expiry else "never expires"
                self.stdout.write(f"{token.token_key}…  created {token.created:%Y-%m-%d %H:%M}, {expires}")
            return
        if revoke:
            chosen = tokens if revoke == "all" else tokens.filter(token_key=revoke.rstrip("…"))
            count, _ = chosen.delete()
            if not count:
                raise CommandError(f"No token of {username} starts with {revoke!r}.")
            self.stdout.write(f"Revoked {count} token(s) of {username}.")
            return
        ttl = knox_settings.TOKEN_TTL if days is None else (timedelta(days=days) if days > 0 else None)
        token, raw = AuthToken.objects.create(user=user, expiry=ttl)
        expires = f"expires {token.expiry:%Y-%m-%d %H:%M} UTC" if token.expiry else "never expires"
        self.stderr.write(f"Token for {username}, {expires} (shown once; send it as 'Authorization: Token <token>'):")
        self.stdout.write(raw)
