"""Reading an upload's multipart body without ever holding more than the limit.

The request's Content-Length is checked before a byte of the body is read; then the
one `file` part is counted as it streams in and the upload is refused (413) the moment
it passes RIM_UPLOAD_MAX. What was received is kept in a spooled temporary file: in
memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, then in a file without a name on disk, which
the system frees when it is closed (also if the process dies), so a refused upload
leaves nothing anywhere.
"""

import tempfile

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.parsers import DataAndFiles, MultiPartParser

from files.services import upload_too_large
from infra.errors import ContentTooLarge, InvalidInput

FIELD = "file"


class BoundedUploadHandler(FileUploadHandler):
    """Keeps the first part named `file`, skips every other file part, and stops the
    upload as soon as the kept part passes the limit. Its temporary file is not called
    `file`: Django closes every handler's `file` when it skips a part."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.RIM_UPLOAD_MAX
        self.spool = None
        self.received = 0
        self.complete = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length > self.limit + settings.RIM_MULTIPART_ALLOWANCE:
            raise upload_too_large()

    def new_file(self, field_name, *args, **kwargs):
        if field_name != FIELD or self.spool is not None:
            raise SkipFile()
        super().new_file(field_name, *args, **kwargs)
        # Closed by discard(), or by whoever reads the UploadedFile it becomes.
        self.spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
        )

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.discard()
            raise upload_too_large()
        self.spool.write(raw_data)

    def file_complete(self, file_size):
        if self.spool is None or self.spool.closed:
            return None
        self.spool.seek(0)
        self.complete = True
        return UploadedFile(
            file=self.spool,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
        )

    def upload_interrupted(self):
        # Also called after a skipped part that came after the kept one: keep that.
        if not self.complete:
            self.discard()

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.close()


class UploadParser(MultiPartParser):
    """DRF's multipart parser with BoundedUploadHandler as the only handler, and its
    failures in rim's errors."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        handler = BoundedUploadHandler(request)
        try:
            data, files = _parse(meta, stream, handler, encoding)
        except BaseException:
            handler.discard()
            raise
        return DataAndFiles(data, files)


def _parse(meta: dict, stream, handler: BoundedUploadHandler, encoding: str):
    try:
        return DjangoMultiPartParser(meta, stream, [handler], encoding).parse()
    except MultiPartParserError as exc:
        raise InvalidInput(f"malformed multipart body: {exc}") from None
    except (TooManyFieldsSent, TooManyFilesSent) as exc:
        raise InvalidInput(str(exc)) from None
    except RequestDataTooBig as exc:
        raise ContentTooLarge(str(exc)) from None
