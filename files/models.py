"""An uploaded file: who uploaded it, what it is, where its bytes are stored."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class File(models.Model):
    """One upload. `key` is the capability in its URL: whoever knows it can download
    the file, so it carries at least 128 random bits. The bytes live in the default
    storage under `stored_name` (and `thumb_name` for an image's thumbnail); `sent_at`
    stays null until a message first carries the file's URL, and unsent files are
    purged after a day (`manage.py purge_uploads`)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    mime = models.CharField(max_length=100)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    stored_name = models.CharField(max_length=255)
    thumb_name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # What purge_uploads looks for: old uploads never sent.
            models.Index(
                fields=["created_at"], condition=Q(sent_at__isnull=True), name="file_unsent_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.mime}, {self.size} bytes)"

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")
