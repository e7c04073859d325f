"""Input validation and output shapes of the conversation routes (docs/protocol.md §5)."""

from django.conf import settings
from rest_framework import serializers

from accounts.serializers import UserSerializer, user_data
from chat.entries import local_time, optional_time
from chat.models import Group, Membership, Message
from chat.protocol import MAX_EMOJI, is_emoji
from chat.services import ADD, MAX_MATCHES, MAX_QUERY, REMOVE, ChatEntry, SearchResult
from infra.api import Id, PageInput
from infra.errors import ContentTooLarge
from infra.openapi import Time


def group_data(group: Group) -> dict:
    return {
        "id": group.pk,
        "name": group.name,
        "avatar": group.avatar,
        "mode": group.mode,
        "creatorUid": group.creator_id,
    }


def message_data(message: Message, reactions: list[dict]) -> dict:
    """MessageInfo; `client_msg_id` is snake-case on the wire, as rim sends it. A
    recalled message has no content left."""
    return {
        "id": message.pk,
        "kind": message.kind,
        "content": message.content,
        "gid": message.group_id,
        "uid": message.sender_id,
        "client_msg_id": message.client_msg_id,
        "createTime": local_time(message.created_at),
        "updateTime": local_time(message.updated_at),
        "recalled": message.recalled,
        "editTime": optional_time(message.edited_at),
        "replyTo": message.reply_to_id,
        "reactions": reactions,
    }


def chat_entry_data(entry: ChatEntry) -> dict:
    return {
        "group": group_data(entry.group),
        "msg": message_data(entry.message, entry.reactions),
        "user": user_data(entry.user),
        "unread": entry.unread,
    }


def search_result_data(result: SearchResult) -> dict:
    """A ChatMessage of history's shape, with where the query's terms occur in its
    content: [start, end) offsets in characters (code points)."""
    return {**chat_entry_data(result.entry), "matches": [list(span) for span in result.matches]}


def member_data(membership: Membership) -> dict:
    return {"role": membership.role, "user": user_data(membership.user)}


# The shapes of group_data, message_data, chat_entry_data, member_data and of the
# other answers, for the API's description (infra.openapi).
class GroupSerializer(serializers.Serializer):
    """A conversation: a group (mode 2) or a one-to-one chat (mode 1)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    avatar = serializers.CharField()
    mode = serializers.ChoiceField(choices=Group.MODE_CHOICES)
    creatorUid = serializers.IntegerField()


class ReactionSerializer(serializers.Serializer):
    emoji = serializers.CharField()
    count = serializers.IntegerField(help_text="how many members reacted with it")
    mine = serializers.BooleanField(help_text="whether the caller is one of them")


class MessageInfoSerializer(serializers.Serializer):
    """A message; `client_msg_id` is snake-case, as rim sends it."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Message.KIND_CHOICES)
    content = serializers.CharField(help_text='"" once recalled; a file\'s URL for Image, File')
    gid = serializers.IntegerField()
    uid = serializers.IntegerField(help_text="the sender")
    client_msg_id = serializers.CharField()
    createTime = Time()
    updateTime = Time()
    recalled = serializers.BooleanField()
    editTime = Time(allow_null=True, help_text="the last edit's, or null")
    replyTo = serializers.IntegerField(allow_null=True, help_text="the message replied to")
    reactions = ReactionSerializer(many=True)


class ChatMessageSerializer(serializers.Serializer):
    """A message with its group and a user."""

    group = GroupSerializer()
    msg = MessageInfoSerializer()
    user = UserSerializer(
        help_text="history: the sender; chat list: the other member of a one-to-one chat, "
        "the sender of the last message of a group"
    )
    unread = serializers.IntegerField(
        allow_null=True, help_text="chat list: messages from others not yet read; else null"
    )


class SearchResultSerializer(ChatMessageSerializer):
    """A found message: history's ChatMessage (`user` the sender, `unread` null) and
    where the query's words occur in its content."""

    matches = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        max_length=MAX_MATCHES,
        help_text="every occurrence of the query's words in msg.content: [start, end) "
        "offsets in characters (code points), in order, overlapping ones merged",
    )


class MemberSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.ROLE_CHOICES)
    user = UserSerializer()


class ReactionStateSerializer(serializers.Serializer):
    on = serializers.BooleanField(help_text="whether the caller's reaction is now there")


class PresenceSerializer(serializers.Serializer):
    uid = serializers.IntegerField()
    online = serializers.BooleanField()
    lastSeen = Time(allow_null=True, help_text="null while online, or if never seen")


class GroupFields(serializers.Serializer):
    name = serializers.CharField(max_length=128, allow_blank=True, default="")
    avatar = serializers.CharField(max_length=512, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=Group.MODE_CHOICES, default=Group.GROUP)
    creatorUid = Id(required=False)


class MemberFields(serializers.Serializer):
    uid = Id()
    role = serializers.ChoiceField(choices=Membership.ROLE_CHOICES, default=Membership.MEMBER)


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
    opType = serializers.ChoiceField(choices=[(ADD, "add"), (REMOVE, "remove")])


class ChatListInput(PageInput):
    uid = Id(required=False)


class HistoryInput(PageInput):
    gid = Id()
    # rim's client sends the peer's id here; the token decides who reads.
    uid = serializers.IntegerField(required=False, allow_null=True)


class SearchInput(PageInput):
    q = serializers.CharField(
        max_length=MAX_QUERY, help_text="the words to find (1-200 characters once trimmed)"
    )
    gid = Id(required=False, allow_null=True, help_text="one group; absent or null: all mine")


class GroupReadInput(serializers.Serializer):
    gid = Id()
    uid = Id(required=False)


class MessageInput(serializers.Serializer):
    gid = Id()
    msgId = Id()


class EditInput(MessageInput):
    content = serializers.CharField(trim_whitespace=False)

    def validate_content(self, content: str) -> str:
        limit = settings.RIM_MAX_CONTENT
        if "\x00" in content:
            raise serializers.ValidationError("must not contain NUL characters")
        if len(content.encode()) > limit:
            raise ContentTooLarge(f"content is over the limit of {limit} bytes")
        return content


class ReactInput(MessageInput):
    emoji = serializers.CharField(max_length=MAX_EMOJI, trim_whitespace=False)

    def validate_emoji(self, emoji: str) -> str:
        if not is_emoji(emoji):
            raise serializers.ValidationError(f"must be one emoji (1 to {MAX_EMOJI} characters)")
        return emoji


class PresenceQuery(serializers.Serializer):
    uids = serializers.CharField(max_length=2000, help_text="user ids separated by commas")

    def validate_uids(self, raw: str) -> list[int]:
        """A comma-separated list of user ids (at most RIM_PAGE_SIZE_MAX), in order,
        without repeats."""
        try:
            uids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise serializers.ValidationError("must be user ids separated by commas") from None
        if not uids or any(not 0 < uid < 2**63 for uid in uids):
            raise serializers.ValidationError("must be user ids separated by commas")
        if len(uids) > settings.RIM_PAGE_SIZE_MAX:
            raise serializers.ValidationError(
                f"at most {settings.RIM_PAGE_SIZE_MAX} user ids at a time"
            )
        return list(dict.fromkeys(uids))
