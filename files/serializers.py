"""The File object of the REST API (PROTOCOL.md §6.3)."""

from files import services
from files.models import File


def file_data(file: File) -> dict:
    return {
        "id": file.pk,
        "url": services.file_url(file),
        "name": file.name,
        "size": file.size,
        "mime": file.mime,
        "width": file.width,
        "height": file.height,
        "thumbUrl": services.thumbnail_url(file),
    }
