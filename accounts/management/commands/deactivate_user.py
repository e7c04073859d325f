"""`manage.py deactivate_user <account>`: lock a user out from the command line, as
the admin's action does (tokens revoked, every open connection closed)."""

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import User


class Command(BaseCommand):
    help = "Deactivate a user: revoke its tokens and close its WebSocket connections."

    def add_arguments(self, parser):
        parser.add_argument("account")

    def handle(self, *args, account: str, **options):
        user = User.objects.filter(account=account).first()
        if user is None:
            raise CommandError(f"no user with account {account!r}")
        services.deactivate_user(user=user)
        self.stdout.write(f"{account} deactivated")
