"""REST routes of files: the upload, and the downloads at the file's capability URL.

A download needs no token: its URL is unguessable and is the access (as media URLs in
Slack or Matrix), so that `<img src>` and plain links work. Whoever was sent a file's
URL can fetch it until the file is deleted.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from files import services
from files.headers import CONTENT_SECURITY_POLICY
from files.serializers import FileSerializer, UploadInput, file_data
from files.uploads import FIELD, UploadParser
from infra.api import envelope
from infra.errors import InvalidInput
from infra.openapi import refusal, route

# The path parameter of a file's capability URLs.
KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, description="from the File's url")

# Seconds a browser may reuse a download. Private: no shared cache keeps a file that
# was deleted (a recalled message's) for others.
CACHE_SECONDS = 3600


class UploadRateThrottle(UserRateThrottle):
    """RIM_UPLOAD_RATE uploads per user (DRF's syntax, "30/min"), counted in the
    default cache: per process unless CACHES is shared."""

    scope = "upload"

    def get_rate(self) -> str | None:
        return settings.RIM_UPLOAD_RATE


class Upload(APIView):
    parser_classes = [UploadParser]
    throttle_classes = [UploadRateThrottle]

    @route(
        "Upload a file",
        description="Images are checked by decoding them, stripped of their metadata and "
        "given a thumbnail. Send the File's `url` as the content of a message of kind Image "
        "or File; a file no message carries is deleted after a day.",
        body=UploadInput,
        data=FileSerializer,
        errors={
            409: "the caller's files leave no room for it (RIM_UPLOAD_QUOTA)",
            413: "the file is over RIM_UPLOAD_MAX bytes, or an image over its pixels",
            415: "a type that is not allowed, or an image that does not decode",
        },
    )
    def post(self, request):
        # Before the body is read: a user out of quota is refused at once.
        services.ensure_room(owner=request.user)
        upload = request.FILES.get(FIELD)
        if upload is None:
            raise InvalidInput(f"{FIELD}: send the file as the multipart/form-data field {FIELD!r}")
        return envelope(file_data(services.upload_file(owner=request.user, upload=upload)))


def download_schema(summary: str):
    """A download's answers: the bytes, or a redirect to object storage."""
    return extend_schema(
        summary=summary,
        description="No token: the URL is the access. Served with "
        "X-Content-Type-Options: nosniff, and as an attachment unless it is an image.",
        parameters=[
            KEY,
            OpenApiParameter(
                "Location",
                str,
                OpenApiParameter.HEADER,
                description="a presigned URL, valid for RIM_S3_URL_EXPIRE seconds",
                response=[302],
            ),
        ],
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="the file, with its own content type"
            ),
            302: OpenApiResponse(description="stored in object storage: fetch it there"),
            404: refusal(404, "no such file"),
        },
    )


@download_schema("Download a file")
class Download(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    thumbnail = False

    def get(self, request, key: str):
        item = services.download(key=key, thumbnail=self.thumbnail)
        url = services.signed_url(item)
        if url is not None:
            response = HttpResponseRedirect(url)
            # The signed URL expires: a browser must not follow a cached redirect later.
            response["Cache-Control"] = f"private, max-age={settings.RIM_S3_URL_EXPIRE // 2}"
        else:
            response = StreamedFile(services.open_stored(item), content_type=item.content_type)
            response["Content-Disposition"] = item.content_disposition
            response["Cache-Control"] = f"private, max-age={CACHE_SECONDS}"
        return secured(response)


@download_schema("Download an image's thumbnail")
class Thumbnail(Download):
    thumbnail = True


class Info(APIView):
    """The File a capability URL names: what a message of kind Image or File carries
    is only the URL, and whoever was sent it needs the name, size, type and an image's
    dimensions to show it (`<url>/info`, no token, as the download itself)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @route(
        "A file's details",
        description="No token: the URL is the access. A message of kind Image or File "
        "carries only the file's URL; this is its File.",
        data=FileSerializer,
        errors={404: "no such file"},
    )
    @extend_schema(parameters=[KEY])
    def get(self, request, key: str):
        response = envelope(file_data(services.file_by_key(key)))
        response["Cache-Control"] = f"private, max-age={CACHE_SECONDS}"
        return response


def secured(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Referrer-Policy"] = "no-referrer"
    return response


class StreamedFile(FileResponse):
    """A FileResponse that an ASGI server streams: Django's own reads the whole file
    into a list first there. Each chunk is read in a worker thread, off the event loop."""

    block_size = 64 * 1024

    async def __aiter__(self):
        read = sync_to_async(self.file_to_stream.read, thread_sensitive=False)
        while chunk := await read(self.block_size):
            yield chunk
