"""REST routes for groups, members and messages; thin over chat.services."""

from rest_framework.views import APIView

from chat import serializers as io
from chat import services
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
        services.mark_group_read(user=request.user, gid=data["gid"])
        return envelope(True)
