"""The web client's page (templates/client.html): what the client must know of the
server beyond the API. The windows for recall and edit (RIM_RECALL_WINDOW,
RIM_EDIT_WINDOW) decide which actions a message's menu offers, and the server's clock
(in its time zone, as createTime is written) lets the client tell a message's age
whatever the browser's own clock and time zone. The upload limit (RIM_UPLOAD_MAX) lets
it refuse a file too large before sending it, and the start of the URLs the server
gives files (on RIM_PUBLIC_URL, if set) lets it tell an uploaded file from any other
image URL."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView


class ClientPage(TemplateView):
    template_name = "client.html"

    def get_context_data(self, **kwargs) -> dict:
        now = timezone.localtime()
        return {
            **super().get_context_data(**kwargs),
            "recall_window": f"{settings.RIM_RECALL_WINDOW:g}",
            "edit_window": f"{settings.RIM_EDIT_WINDOW:g}",
            "server_time": now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}",
            "upload_max": settings.RIM_UPLOAD_MAX,
            "file_url_prefix": file_url_prefix(),
        }


def file_url_prefix() -> str:
    """What every file's URL starts with, its key following."""
    return settings.RIM_PUBLIC_URL + reverse("file", args=["key"]).removesuffix("key")
