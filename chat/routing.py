from django.urls import re_path

from chat.consumers import ChatConsumer

# rim's clients connect at "/" (port 3012 in rim); ours also at "/ws".
websocket_urlpatterns = [re_path(r"^(ws/?)?$", ChatConsumer.as_asgi())]
