"""REST routes for groups, members and messages; thin over chat.services."""

import uuid

from asgiref.sync import async_to_sync
from rest_framework.views import APIView

from chat import serializers as io
from chat import services
from chat.entries import optional_time
from infra import presence
from infra.api import envelope, page_bounds, require_me, validated


class CreateGroup(APIView):
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
    def post(self, request):
        data = validated(io.UpdateGroupInput, request.data)
        services.update_group(
            user=request.user, gid=data["id"], name=data["name"], avatar=data["avatar"]
        )
        return envelope(True)


class MyGroups(APIView):
    def get(self, request):
        query = validated(io.MyGroupsQuery, request.query_params)
        require_me(request, query.get("uid"))
        offset, limit = page_bounds(query)
        groups = services.list_groups(user=request.user, offset=offset, limit=limit)
        return envelope([io.group_data(group) for group in groups])


class GroupMembers(APIView):
    def get(self, request):
        query = validated(io.GidQuery, request.query_params)
        offset, limit = page_bounds(query)
        members = services.list_members(
            user=request.user, gid=query["gid"], offset=offset, limit=limit
        )
        return envelope([io.member_data(m) for m in members])


class ChangeMembers(APIView):
    def post(self, request):
        data = validated(io.ChangeMembersInput, request.data)
        services.change_members(
            user=request.user, gid=data["gid"], uids=data["uids"], op=data["opType"]
        )
        return envelope(True)


class ChatList(APIView):
    def post(self, request):
        data = validated(io.ChatListInput, request.data)
        require_me(request, data.get("uid"))
        offset, limit = page_bounds(data)
        entries = services.chat_list(user=request.user, offset=offset, limit=limit)
        return envelope([io.chat_entry_data(entry) for entry in entries])


class History(APIView):
    def post(self, request):
        data = validated(io.HistoryInput, request.data)
        offset, limit = page_bounds(data)
        entries = services.history(user=request.user, gid=data["gid"], offset=offset, limit=limit)
        return envelope([io.chat_entry_data(entry) for entry in entries])


class GroupRead(APIView):
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
    def post(self, request):
        _change(request, io.MessageInput, services.recall_message)
        return envelope(True)


class Edit(APIView):
    def post(self, request):
        _change(request, io.EditInput, services.edit_message, content="content")
        return envelope(True)


class React(APIView):
    def post(self, request):
        result = _change(request, io.ReactInput, services.react_to_message, emoji="emoji")
        return envelope({"on": result.on})


class Presence(APIView):
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
