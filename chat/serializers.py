"""Input validation and output shapes of the conversation routes (docs/protocol.md §5)."""

from rest_framework import serializers

from accounts.serializers import user_data
from chat.models import Group, Membership, Message
from chat.services import ADD, REMOVE, ChatEntry, local_time
from infra.api import Id, PageInput


def group_data(group: Group) -> dict:
    return {
        "id": group.pk,
        "name": group.name,
        "avatar": group.avatar,
        "mode": group.mode,
        "creatorUid": group.creator_id,
    }


def message_data(message: Message) -> dict:
    """MessageInfo; `client_msg_id` is snake-case on the wire, as rim sends it."""
    return {
        "id": message.pk,
        "kind": message.kind,
        "content": message.content,
        "gid": message.group_id,
        "uid": message.sender_id,
        "client_msg_id": message.client_msg_id,
        "createTime": local_time(message.created_at),
        "updateTime": local_time(message.updated_at),
    }


def chat_entry_data(entry: ChatEntry) -> dict:
    return {
        "group": group_data(entry.group),
        "msg": message_data(entry.message),
        "user": user_data(entry.user),
        "unread": entry.unread,
    }


def member_data(membership: Membership) -> dict:
    return {"role": membership.role, "user": user_data(membership.user)}


class GroupFields(serializers.Serializer):
    name = serializers.CharField(max_length=128, allow_blank=True, default="")
    avatar = serializers.CharField(max_length=512, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=[Group.ONE_TO_ONE, Group.GROUP], default=Group.GROUP)
    creatorUid = Id(required=False)


class MemberFields(serializers.Serializer):
    uid = Id()
    role = serializers.ChoiceField(
        choices=[Membership.MEMBER, Membership.ADMIN], default=Membership.MEMBER
    )


class CreateGroupInput(serializers.Serializer):
    group = GroupFields()
    users = MemberFields(many=True, max_length=1000, default=list)


class UpdateGroupInput(serializers.Serializer):
    id = Id()
    name = serializers.CharField(max_length=128, allow_blank=True)
    avatar = serializers.CharField(max_length=512, allow_blank=True, default="")


class MyGroupsQuery(PageInput):
    uid = Id(required=False)
    size = serializers.IntegerField(min_value=1, default=100)


class GidQuery(PageInput):
    gid = Id()
    size = serializers.IntegerField(min_value=1, default=100)


class ChangeMembersInput(serializers.Serializer):
    gid = Id()
    uids = serializers.ListField(child=Id(), min_length=1, max_length=1000)
    opType = serializers.ChoiceField(choices=[ADD, REMOVE])


class ChatListInput(PageInput):
    uid = Id(required=False)


class HistoryInput(PageInput):
    gid = Id()
    # rim's client sends the peer's id here; the token decides who reads.
    uid = serializers.IntegerField(required=False, allow_null=True)


class GroupReadInput(serializers.Serializer):
    gid = Id()
    uid = Id(required=False)
