"""REST routes for groups, members and messages; thin over chat.services."""

import uuid

from asgiref.sync import async_to_sync
from rest_framework.views import APIView

from chat import serializers as io
from chat import services
from chat.entries import optional_time
from infra import presence
from infra.api import envelope, page_bounds, require_me, validated
from infra.openapi import DONE, NEW_ID, route
from infra.throttling import AddressRateThrottle

NOT_ME = "the uid is not the caller's"
NOT_MEMBER = "the caller is not a member of the group, or there is no such group"
NOT_A_MESSAGE = "no such message in the group"


class CreateGroup(APIView):
    @route(
        "Create a group, or open a one-to-one chat",
        description="The creator is always a member, with role admin (2). A one-to-one "
        "chat (mode 1) has exactly one other member and is unique per pair: creating it "
        "again answers the existing one's id.",
        body=io.CreateGroupInput,
        data=NEW_ID,
        errors={403: NOT_ME, 404: "a user in users does not exist"},
    )
    def post(self, request):
        data = validated(io.CreateGroupInput, request.data)
        fields = data["group"]
        require_me(request, fields.get("creatorUid"))
        group = services.create_group(
            creator=request.user,
            name=fields["name"],
            avatar=fields["avatar"],
            mode=fields["mode"],
            members={member["uid"]: member["role"] for member in data["users"]},
        )
        return envelope(group.pk)


class UpdateGroup(APIView):
    @route(
        "Rename a group, or change its avatar",
        body=io.UpdateGroupInput,
        data=DONE,
        errors={403: f"{NOT_MEMBER}; or not its admin"},
    )
    def post(self, request):
        data = validated(io.UpdateGroupInput, request.data)
        services.update_group(
            user=request.user, gid=data["id"], name=data["name"], avatar=data["avatar"]
        )
        return envelope(True)


class MyGroups(APIView):
    @route(
        "The groups I am in",
        query=io.MyGroupsQuery,
        data=io.GroupSerializer(many=True),
        errors={403: NOT_ME},
    )
    def get(self, request):
        query = validated(io.MyGroupsQuery, request.query_params)
        require_me(request, query.get("uid"))
        offset, limit = page_bounds(query)
        groups = services.list_groups(user=request.user, offset=offset, limit=limit)
        return envelope([io.group_data(group) for group in groups])


class GroupMembers(APIView):
    @route(
        "A group's members",
        query=io.GidQuery,
        data=io.MemberSerializer(many=True),
        errors={403: NOT_MEMBER},
    )
    def get(self, request):
        query = validated(io.GidQuery, request.query_params)
        offset, limit = page_bounds(query)
        members = services.list_members(
            user=request.user, gid=query["gid"], offset=offset, limit=limit
        )
        return envelope([io.member_data(m) for m in members])


class ChangeMembers(APIView):
    @route(
        "Add or remove members",
        description="Only a group admin; any member may remove itself. A one-to-one chat's "
        "members are fixed.",
        body=io.ChangeMembersInput,
        data=DONE,
        errors={
            403: f"{NOT_MEMBER}; or not its admin; or a one-to-one chat",
            404: "a user to add does not exist",
        },
    )
    def post(self, request):
        data = validated(io.ChangeMembersInput, request.data)
        services.change_members(
            user=request.user, gid=data["gid"], uids=data["uids"], op=data["opType"]
        )
        return envelope(True)


class ChatList(APIView):
    @route(
        "My conversations, newest first, with unread counts",
        description="One ChatMessage per group of mine that has a message: its last one.",
        body=io.ChatListInput,
        data=io.ChatMessageSerializer(many=True),
        errors={403: NOT_ME},
    )
    def post(self, request):
        data = validated(io.ChatListInput, request.data)
        require_me(request, data.get("uid"))
        offset, limit = page_bounds(data)
        entries = services.chat_list(user=request.user, offset=offset, limit=limit)
        return envelope([io.chat_entry_data(entry) for entry in entries])


class History(APIView):
    @route(
        "A group's messages",
        description="Page 1 is the newest `size` messages; each page ascending by id. "
        "`uid` is ignored: the token says who reads.",
        body=io.HistoryInput,
        data=io.ChatMessageSerializer(many=True),
        errors={403: NOT_MEMBER},
    )
    def post(self, request):
        data = validated(io.HistoryInput, request.data)
        offset, limit = page_bounds(data)
        entries = services.history(user=request.user, gid=data["gid"], offset=offset, limit=limit)
        return envelope([io.chat_entry_data(entry) for entry in entries])


class MessageSearch(APIView):
    # One budget per client address with user/search (RIM_THROTTLE_SEARCH).
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "search"

    @route(
        "Search my messages",
        description="Text messages of the caller's groups (or of group `gid`) that contain "
        "every word of `q` (split on white space), anywhere, whatever the case, in any "
        "script; never a recalled one. Best match first, ties newest first; the newest "
        "RIM_SEARCH_DEPTH matches are ranked and paged. Words shorter than 3 characters "
        "alone search the newest RIM_SEARCH_SCAN messages of the groups.",
        body=io.SearchInput,
        data=io.SearchResultSerializer(many=True),
        errors={403: NOT_MEMBER},
    )
    def post(self, request):
        data = validated(io.SearchInput, request.data)
        offset, limit = page_bounds(data)
        results = services.search_messages(
            user=request.user, q=data["q"], gid=data.get("gid"), offset=offset, limit=limit
        )
        return envelope([io.search_result_data(result) for result in results])


class GroupRead(APIView):
    @route(
        "Mark a group read up to its newest message",
        body=io.GroupReadInput,
        data=DONE,
        errors={403: f"{NOT_ME}; or {NOT_MEMBER}"},
    )
    def post(self, request):
        data = validated(io.GroupReadInput, request.data)
        require_me(request, data.get("uid"))
        services.mark_group_read(user_id=request.user.pk, gid=data["gid"])
        return envelope(True)


def _change(request, input_class, service, **fields):
    """Recall, edit and react over REST: the WebSocket's rules and pushes. The REST
    request has no clientMsgId of its own; each is a new change (not a retry)."""
    data = validated(input_class, request.data)
    return service(
        user_id=request.user.pk,
        gid=data["gid"],
        msg_id=data["msgId"],
        client_msg_id=f"rest-{uuid.uuid4().hex}",
        **{name: data[key] for name, key in fields.items()},
    )


class Recall(APIView):
    @route(
        "Recall a message",
        description="Its sender within RIM_RECALL_WINDOW seconds, or an admin of a group "
        "at any time; its content is erased. Recalling a recalled message changes nothing.",
        body=io.MessageInput,
        data=DONE,
        errors={
            403: f"{NOT_MEMBER}; or not its sender nor an admin; or past the window",
            404: NOT_A_MESSAGE,
        },
    )
    def post(self, request):
        _change(request, io.MessageInput, services.recall_message)
        return envelope(True)


class Edit(APIView):
    @route(
        "Edit a message's text",
        description="Its sender only, Text or RichText only, within RIM_EDIT_WINDOW seconds.",
        body=io.EditInput,
        data=DONE,
        errors={
            403: f"{NOT_MEMBER}; or not its sender; or not text; or past the window",
            404: NOT_A_MESSAGE,
            409: "the message was recalled",
            413: "the content is over RIM_MAX_CONTENT bytes, or the body over the limit",
        },
    )
    def post(self, request):
        _change(request, io.EditInput, services.edit_message, content="content")
        return envelope(True)


class React(APIView):
    @route(
        "Toggle my reaction to a message",
        description="At most 20 different emoji per message.",
        body=io.ReactInput,
        data=io.ReactionStateSerializer,
        errors={
            403: f"{NOT_MEMBER}; or the message has 20 other emoji",
            404: NOT_A_MESSAGE,
            409: "the message was recalled",
        },
    )
    def post(self, request):
        result = _change(request, io.ReactInput, services.react_to_message, emoji="emoji")
        return envelope({"on": result.on})


class Presence(APIView):
    @route(
        "Who is online",
        description="Only users who share a group with the caller are answered; the "
        "others are left out.",
        query=io.PresenceQuery,
        data=io.PresenceSerializer(many=True),
    )
    def get(self, request):
        uids = validated(io.PresenceQuery, request.query_params)["uids"]
        last_seen = services.last_seen_of(viewer_id=request.user.pk, uids=set(uids))
        online = presence_of(set(last_seen))
        return envelope(
            [
                {
                    "uid": uid,
                    "online": uid in online,
                    "lastSeen": None if uid in online else optional_time(last_seen[uid]),
                }
                for uid in uids
                if uid in last_seen
            ]
        )


def presence_of(uids: set[int]) -> set[int]:
    """Which of `uids` are online anywhere in the deployment."""
    return async_to_sync(presence.tracker().online)(uids)
