"""Input validation and output shapes of the account routes (docs/protocol.md §5)."""

from rest_framework import serializers

from accounts.models import Friendship, User
from infra.api import Id, PageInput


def user_data(user: User, *, with_email: bool = True) -> dict:
    """User as rim sends it: never a password or its hash."""
    return {
        "id": user.pk,
        "name": user.name,
        "avatar": user.avatar,
        "email": user.email if with_email else "",
        "account": user.account,
    }


class CreateUserInput(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    avatar = serializers.CharField(max_length=512, allow_blank=True, default="")
    email = serializers.CharField(max_length=254, allow_blank=True, default="")
    account = serializers.RegexField(
        r"^[^\s\x00-\x1f]+$",
        max_length=64,
        error_messages={"invalid": "Use 1 to 64 characters without spaces."},
    )
    password = serializers.CharField(min_length=6, max_length=128, trim_whitespace=False)


class LoginInput(serializers.Serializer):
    account = serializers.CharField(max_length=64)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class UidQuery(serializers.Serializer):
    uid = Id()


class TokenQuery(serializers.Serializer):
    token = serializers.CharField(max_length=64)


class AccountQuery(serializers.Serializer):
    account = serializers.CharField(max_length=64)


class FriendInput(serializers.Serializer):
    fid = Id()


class FriendListQuery(PageInput):
    status = serializers.ChoiceField(choices=[Friendship.APPLY, Friendship.FRIENDS])


class FriendAnswerInput(serializers.Serializer):
    ACCEPT = 1
    REJECT = 2

    fid = Id()
    status = serializers.ChoiceField(choices=[ACCEPT, REJECT])
