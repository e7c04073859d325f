from django.contrib import admin
from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from accounts import views as accounts
from chat import views as chat
from chat.page import ClientPage
from files import views as files
from infra.api import not_found
from infra.openapi import OncePerProcess

api = [
    ("user/create", accounts.CreateUser),
    ("user/login", accounts.Login),
    ("user/logout", accounts.Logout),
    ("user/get", accounts.GetUser),
    ("user/token", accounts.UserForToken),
    ("user/search", accounts.SearchUser),
    ("friend/add", accounts.AddFriend),
    ("friend/list", accounts.ListFriends),
    ("friend/status/modify", accounts.AnswerFriend),
    ("group/create", chat.CreateGroup),
    ("group/update", chat.UpdateGroup),
    ("group/get", chat.MyGroups),
    ("group/user/get", chat.GroupMembers),
    ("group/user/change", chat.ChangeMembers),
    ("message/chat/list", chat.ChatList),
    ("message/history", chat.History),
    ("message/group/read", chat.GroupRead),
    ("message/recall", chat.Recall),
    ("message/edit", chat.Edit),
    ("message/react", chat.React),
    ("message/search", chat.MessageSearch),
    ("user/presence", chat.Presence),
    ("file/upload", files.Upload),
]

urlpatterns = [
    *(path(f"api/{route}", view.as_view()) for route, view in api),
    # A file's capability URLs: the key is the access (files/views.py).
    path("api/file/<str:key>", files.Download.as_view(), name="file"),
    path("api/file/<str:key>/thumb", files.Thumbnail.as_view(), name="file-thumbnail"),
    path("api/file/<str:key>/info", files.Info.as_view(), name="file-info"),
    # The OpenAPI description of the routes above and its page (infra/openapi.py): the
    # two answers under /api/ that are not the envelope (their refusals still are).
    path(
        "api/schema/",
        SpectacularJSONAPIView.as_view(generator_class=OncePerProcess),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(template_name="api_docs.html"),
        name="api-docs",
    ),
    # Unknown API routes answer in the envelope, also with DEBUG on; "/api" itself too
    # (APPEND_SLASH would otherwise redirect it, or fail on a POST).
    re_path(r"^api(/|$)", not_found),
    path("admin/", admin.site.urls),
    path("", ClientPage.as_view(), name="client"),
]

handler404 = "infra.api.not_found"
handler500 = "infra.api.server_error"
