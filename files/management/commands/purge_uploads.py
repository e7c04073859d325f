"""`manage.py purge_uploads`: delete the uploads that were never sent in a message (run
it from cron, e.g. hourly)."""

from django.core.management.base import BaseCommand, CommandError

from files import services

DAY = 86400


class Command(BaseCommand):
    help = "Delete files uploaded more than --older-than seconds ago and never sent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=DAY,
            help=f"seconds since the upload (default {DAY}: a day)",
        )

    def handle(self, *args, older_than: float, **options):
        if older_than < 0:
            raise CommandError("--older-than must not be negative")
        purged = services.purge_unsent(older_than=older_than)
        self.stdout.write(f"purged {purged} unsent upload(s)")
