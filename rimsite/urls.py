from django.contrib import admin
from django.urls import path, re_path
from django.views.generic import TemplateView

from accounts import views as accounts
from chat import views as chat
from infra.api import not_found

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
    ("user/presence", chat.Presence),
]

urlpatterns = [
    *(path(f"api/{route}", view.as_view()) for route, view in api),
    # Unknown API routes answer in the envelope, also with DEBUG on; "/api" itself too
    # (APPEND_SLASH would otherwise redirect it, or fail on a POST).
    re_path(r"^api(/|$)", not_found),
    path("admin/", admin.site.urls),
    path("", TemplateView.as_view(template_name="client.html"), name="client"),
]

handler404 = "infra.api.not_found"
handler500 = "infra.api.server_error"
