"""Create an API token for a user (shown once, stored hashed), list a user's tokens, or revoke them."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken


class Command(BaseCommand):
    help = "Create an API token for USER (printed once; only its hash is stored). --list and --revoke manage tokens."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--list", action="store_true", help="List the user's tokens by their public prefix.")
        parser.add_argument(
            "--revoke", metavar="PREFIX", help="Revoke the token whose public prefix is PREFIX ('all' for every one)."
        )

    def handle(self, username, list, revoke, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        tokens = AuthToken.objects.filter(user=user)
        if list:
            for token in tokens.order_by("created"):
                self.stdout.write(f"{token.token_key}…  created {token.created:%Y-%m-%d %H:%M}")
            return
        if revoke:
            chosen = tokens if revoke == "all" else tokens.filter(token_key=revoke.rstrip("…"))
            count, _ = chosen.delete()
            if not count:
                raise CommandError(f"No token of {username} starts with {revoke!r}.")
            self.stdout.write(f"Revoked {count} token(s) of {username}.")
            return
        _, raw = AuthToken.objects.create(user=user)
        self.stderr.write(f"Token for {username} (shown once; send it as 'Authorization: Token <token>'):")
        self.stdout.write(raw)
