"""The File object of the REST API (PROTOCOL.md §6.3)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

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


# The shape of file_data, for the API's description (infra.openapi).
class FileSerializer(serializers.Serializer):
    """An uploaded file."""

    id = serializers.IntegerField()
    url = serializers.CharField(help_text="where to download it; a message's content")
    name = serializers.CharField()
    size = serializers.IntegerField(help_text="bytes")
    mime = serializers.CharField()
    width = serializers.IntegerField(allow_null=True, help_text="images only, else null")
    height = serializers.IntegerField(allow_null=True, help_text="images only, else null")
    thumbUrl = serializers.CharField(allow_null=True, help_text="images only, else null")


@extend_schema_field(OpenApiTypes.BINARY)
class FilePart(serializers.FileField):
    """A file sent as a part of a multipart/form-data body."""


# For the API's description: files.uploads reads the body as it streams in.
class UploadInput(serializers.Serializer):
    file = FilePart(help_text="the file (any other part is ignored)")
