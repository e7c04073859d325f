"""The web client's page (templates/client.html): what the client must know of the
server beyond the API. The windows for recall and edit (RIM_RECALL_WINDOW,
RIM_EDIT_WINDOW) decide which actions a message's menu offers, and the server's clock
(in its time zone, as createTime is written) lets the client tell a message's age
whatever the browser's own clock and time zone."""

from django.conf import settings
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
        }
