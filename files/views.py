"""REST routes of files: the upload, and the downloads at the file's capability URL.

A download needs no token: its URL is unguessable and is the access (as media URLs in
Slack or Matrix), so that `<img src>` and plain links work. Whoever was sent a file's
URL can fetch it until the file is deleted.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from rest_framework.permissions import AllowAny
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from files import services
from files.headers import CONTENT_SECURITY_POLICY
from files.serializers import file_data
from files.uploads import FIELD, UploadParser
from infra.api import envelope
from infra.errors import InvalidInput

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

    def post(self, request):
        # Before the body is read: a user out of quota is refused at once.
        services.ensure_room(owner=request.user)
        upload = request.FILES.get(FIELD)
        if upload is None:
            raise InvalidInput(f"{FIELD}: send the file as the multipart/form-data field {FIELD!r}")
        return envelope(file_data(services.upload_file(owner=request.user, upload=upload)))


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


class Thumbnail(Download):
    thumbnail = True


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
