"""Uploaded files: storing an upload, finding and serving a file, marking it sent,
deleting it, purging what was never sent.

The chat app calls `file_for_url`, `mark_sent` and `delete_if_unused` (see their
docstrings). The bytes go through Django's storage API (`STORAGES["default"]`: a
directory, or an S3-compatible bucket); a file's stored objects are removed after the
commit that deletes its row, whoever deletes it (a service, the admin, a cascade).
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files import File as DjangoFile
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from files.headers import content_disposition, content_type
from files.images import clean_image
from files.kinds import JPEG, PNG, Kind, detect
from files.models import File
from files.names import clean_name
from infra.errors import ContentTooLarge, InvalidInput, NotFound, QuotaExceeded

log = logging.getLogger("rim.files")

# secrets.token_urlsafe(16): 128 random bits in 22 characters.
KEY_BYTES = 16
THUMBNAIL_KINDS = {kind.extension: kind for kind in (JPEG, PNG)}
PURGE_BATCH = 500


def file_storage() -> Storage:
    return storages["default"]


# Uploading


def ensure_room(*, owner: User, size: int = 1) -> None:
    """QuotaExceeded (409) if `size` more bytes would take the owner's stored files over
    RIM_UPLOAD_QUOTA (0: no quota). Every file counts, sent or not, until it is deleted."""
    quota = settings.RIM_UPLOAD_QUOTA
    if not quota:
        return
    used = File.objects.filter(owner=owner).aggregate(total=Sum("size"))["total"] or 0
    if used + size > quota:
        raise QuotaExceeded(
            f"upload quota exceeded: {used} of {quota} bytes used, this file needs {size}"
        )


def upload_file(*, owner: User, upload: UploadedFile) -> File:
    """Check `upload` by its content, store it (an image re-encoded, with a thumbnail)
    and record it for `owner`. ContentTooLarge, UnsupportedType, QuotaExceeded or
    InvalidInput leave nothing behind."""
    if upload.size == 0:
        raise InvalidInput("file: the file is empty")
    if upload.size > settings.RIM_UPLOAD_MAX:
        raise upload_too_large()
    kind = detect(upload)
    key = secrets.token_urlsafe(KEY_BYTES)
    fields = {"owner": owner, "key": key, "name": clean_name(upload.name or "", kind)}
    stored: list[str] = []
    try:
        if kind.image:
            image = clean_image(upload, kind, max_pixels=settings.RIM_IMAGE_MAX_PIXELS)
            thumbnail_name = _object_name(key, image.thumbnail_kind, "-thumb")
            stored.append(_store(_object_name(key, kind), ContentFile(image.data)))
            stored.append(_store(thumbnail_name, ContentFile(image.thumbnail)))
            fields.update(
                size=len(image.data),
                width=image.width,
                height=image.height,
                thumb_name=stored[1],
            )
        else:
            # Wrapped so that the store sees no content type of the client's: an S3 object
            # gets the one its name (the kind's extension) says.
            stored.append(_store(_object_name(key, kind), DjangoFile(upload.file)))
            fields["size"] = upload.size
        return _record(mime=kind.mime, stored_name=stored[0], **fields)
    except BaseException:
        _delete_stored(stored)
        raise


def upload_too_large() -> ContentTooLarge:
    return ContentTooLarge(f"file over the upload limit of {settings.RIM_UPLOAD_MAX} bytes")


def _object_name(key: str, kind: Kind, suffix: str = "") -> str:
    return f"files/{key[:2]}/{key}{suffix}.{kind.extension}"


def _store(name: str, content: DjangoFile) -> str:
    return file_storage().save(name, content)


def _record(*, owner: User, size: int, **fields) -> File:
    """The row, if the quota still has room: the owner's row is locked meanwhile, so two
    uploads of one user at once cannot both take the last bytes."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=owner.pk).exists()
        ensure_room(owner=owner, size=size)
        return File.objects.create(owner=owner, size=size, **fields)


# Reading and serving


def file_url(file: File) -> str:
    return settings.RIM_PUBLIC_URL + reverse("file", args=[file.key])


def thumbnail_url(file: File) -> str | None:
    if not file.thumb_name:
        return None
    return settings.RIM_PUBLIC_URL + reverse("file-thumbnail", args=[file.key])


@dataclass(frozen=True)
class Download:
    """A stored object and how it is served: images inline, anything else as a
    download."""

    stored_name: str
    filename: str
    mime: str
    inline: bool

    @property
    def content_type(self) -> str:
        return content_type(self.mime)

    @property
    def content_disposition(self) -> str:
        return content_disposition(self.filename, inline=self.inline)


def file_by_key(key: str) -> File:
    """The file of capability key `key`, or NotFound. No other check: knowing the key
    is the access."""
    file = File.objects.filter(key=key).first()
    if file is None:
        raise NotFound("file not found")
    return file


def download(*, key: str, thumbnail: bool = False) -> Download:
    """What the capability URL of `key` serves; NotFound for an unknown key (or a
    thumbnail of a file that has none)."""
    file = file_by_key(key)
    if thumbnail and not file.thumb_name:
        raise NotFound("file not found")
    if thumbnail:
        kind = THUMBNAIL_KINDS[file.thumb_name.rpartition(".")[2]]
        stem = file.name.rpartition(".")[0]
        return Download(file.thumb_name, f"{stem}-thumbnail.{kind.extension}", kind.mime, True)
    return Download(file.stored_name, file.name, file.mime, file.is_image)


def signed_url(item: Download) -> str | None:
    """A short-lived URL of the object in object storage, which the store serves with
    the same type and disposition; None when the storage is a local directory. (The
    other storage the settings configure is django-storages' S3Storage.)"""
    storage = file_storage()
    if isinstance(storage, FileSystemStorage):
        return None
    return storage.url(
        item.stored_name,
        parameters={
            "ResponseContentType": item.content_type,
            "ResponseContentDisposition": item.content_disposition,
        },
        expire=settings.RIM_S3_URL_EXPIRE,
    )


def open_stored(item: Download) -> BinaryIO:
    """The stored bytes, to stream; NotFound if the object is gone."""
    try:
        return file_storage().open(item.stored_name, "rb")
    except FileNotFoundError:
        log.warning("event=file_missing name=%s", item.stored_name)
        raise NotFound("file not found") from None


# What the chat app calls


def file_for_url(url: str, owner_id: int, *, lock: bool = False) -> File | None:
    """The file whose URL (as `File.url` gives it) is exactly `url`, if `owner_id`
    uploaded it; else None. A message of kind Image or File carries such a URL as its
    content. `lock=True` (inside a transaction) locks the file's row, so that sending
    it and deleting it (recall, purge) are serialised."""
    key = url.rpartition("/")[2]
    if not key:
        return None
    files = File.objects.filter(key=key, owner_id=owner_id)
    if lock:
        files = files.select_for_update()
    file = files.first()
    if file is None or file_url(file) != url:
        return None
    return file


def mark_sent(file: File) -> None:
    """Note that a message carries the file (the first time only): it is no longer
    purged as an abandoned upload."""
    if file.sent_at is not None:
        return
    now = timezone.now()
    File.objects.filter(pk=file.pk, sent_at__isnull=True).update(sent_at=now)
    file.sent_at = now


def delete_if_unused(file: File, *, in_use: bool) -> bool:
    """After a message carrying `file` was recalled: delete the file unless another
    message still carries it (`in_use`, which the caller knows). True if deleted."""
    if in_use:
        return False
    delete_file(file)
    return True


def delete_file(file: File) -> None:
    """The row now, its stored objects after the commit."""
    file.delete()


# Housekeeping


def purge_unsent(*, older_than: float) -> int:
    """Delete the files uploaded more than `older_than` seconds ago and never sent, in
    batches of fixed size; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=older_than)
    purged = 0
    while True:
        with transaction.atomic():
            batch = list(
                File.objects.select_for_update()
                .filter(sent_at__isnull=True, created_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not batch:
                return purged
            File.objects.filter(pk__in=batch).delete()
        purged += len(batch)


@receiver(post_delete, sender=File)
def _remove_stored_objects(sender, instance: File, **kwargs) -> None:
    names = [name for name in (instance.stored_name, instance.thumb_name) if name]
    transaction.on_commit(lambda: _delete_stored(names))


def _delete_stored(names: list[str]) -> None:
    storage = file_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            # The row is gone; an object left behind only wastes space.
            log.exception("event=file_delete_failed name=%s", name)
