"""Input validation and output shapes of the account routes (docs/protocol.md §5)."""

from rest_framework import serializers

from accounts.models import Friendship, User
from infra.api import Id, PageInput
from infra.openapi import Scalar


def user_data(user: User, *, with_email: bool = True) -> dict:
    """User as rim sends it: never a password or its hash."""
    return {
        "id": user.pk,
        "name": user.name,
        "avatar": user.avatar,
        "email": user.email if with_email else "",
        "account": user.account,
    }


# The shape of user_data, for the API's description (infra.openapi).
class UserSerializer(serializers.Serializer):
    """A user: never a password or its hash."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    avatar = serializers.CharField()
    email = serializers.CharField(help_text='"" where the caller is not to see it')
    account = serializers.CharField()


TOKEN = Scalar("Token", serializers.UUIDField(help_text="the new token, for Authorization: Bearer"))


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
    status = serializers.ChoiceField(
        choices=Friendship.STATUS_CHOICES,
        help_text="1: my friends; 0: the requests waiting for my answer",
    )


class FriendAnswerInput(serializers.Serializer):
    ACCEPT = 1
    REJECT = 2
    ANSWERS = [(ACCEPT, "confirm"), (REJECT, "reject")]

    fid = Id()
    status = serializers.ChoiceField(choices=ANSWERS)
