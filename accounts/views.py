"""REST routes for users, tokens and friends; thin over accounts.services."""

from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts import serializers as io
from accounts import services
from infra.api import envelope, page_bounds, validated
from infra.errors import Forbidden
from infra.openapi import DONE, NEW_ID, route
from infra.throttling import AddressRateThrottle


class OpenView(APIView):
    """Routes that need no token. They ignore any Authorization header: rim's client
    sends a stale hard-coded one with them."""

    authentication_classes = []
    permission_classes = [AllowAny]


class CreateUser(OpenView):
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "register"

    @route(
        "Create a user",
        body=io.CreateUserInput,
        data=NEW_ID,
        errors={409: "the account exists"},
    )
    def post(self, request):
        data = validated(io.CreateUserInput, request.data)
        return envelope(services.create_user(**data).pk)


class Login(OpenView):
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "login"

    @route(
        "Log in: a new token",
        description="Every login issues a new token (one per device), valid for "
        "RIM_TOKEN_TTL seconds or until its logout.",
        body=io.LoginInput,
        data=io.TOKEN,
        errors={
            401: "wrong account or password (the same message for both)",
            429: "too many logins from this address, or the account is locked after failed "
            "ones: try again after Retry-After seconds",
        },
    )
    def post(self, request):
        data = validated(io.LoginInput, request.data)
        return envelope(services.issue_token(**data))


class Logout(APIView):
    @route("Log out: revoke this request's token", data=DONE)
    def post(self, request):
        services.revoke_token(token_id=request.auth.token_id)
        return envelope(True)


class GetUser(APIView):
    @route(
        "A user",
        description='`email` is "" unless the user is the caller (or the caller is staff).',
        query=io.UidQuery,
        data=io.UserSerializer,
        errors={404: "no such user"},
    )
    def get(self, request):
        uid = validated(io.UidQuery, request.query_params)["uid"]
        # An email is personal: only its owner (and staff) see it.
        own = uid == request.user.pk or request.user.is_staff
        return envelope(io.user_data(services.get_user(uid=uid), with_email=own))


class UserForToken(APIView):
    @route(
        "The user owning a token (the caller's own)",
        query=io.TokenQuery,
        data=io.UserSerializer,
        errors={403: "the token is not the caller's, or not valid"},
    )
    def get(self, request):
        key = validated(io.TokenQuery, request.query_params)["token"]
        session = services.session_for_token(key=key)
        if session is None or session.user.pk != request.user.pk:
            raise Forbidden("that token is not yours")
        return envelope(io.user_data(session.user))


class SearchUser(APIView):
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "search"

    @route(
        "Find a user by exact account",
        description='`email` is always "".',
        query=io.AccountQuery,
        data=io.UserSerializer,
        errors={404: "no user with that account"},
    )
    def get(self, request):
        account = validated(io.AccountQuery, request.query_params)["account"]
        return envelope(io.user_data(services.find_user(account=account), with_email=False))


class AddFriend(APIView):
    @route(
        "Ask a user to be friends",
        description="Asking again, or asking a friend, changes nothing.",
        body=io.FriendInput,
        data=DONE,
        errors={404: "no such user"},
    )
    def post(self, request):
        fid = validated(io.FriendInput, request.data)["fid"]
        services.request_friend(user=request.user, fid=fid)
        return envelope(True)


class ListFriends(APIView):
    @route(
        "My friends, or the friend requests waiting for my answer",
        query=io.FriendListQuery,
        data=io.UserSerializer(many=True),
    )
    def get(self, request):
        query = validated(io.FriendListQuery, request.query_params)
        offset, limit = page_bounds(query)
        users = services.list_friends(
            user=request.user, status=query["status"], offset=offset, limit=limit
        )
        return envelope([io.user_data(user) for user in users])


class AnswerFriend(APIView):
    @route(
        "Confirm or reject a friend request to me",
        description="Confirming makes both friends and opens their one-to-one chat "
        "(a group of mode 1) if they have none; rejecting deletes the request.",
        body=io.FriendAnswerInput,
        data=DONE,
        errors={404: "no friend request from that user"},
    )
    def post(self, request):
        data = validated(io.FriendAnswerInput, request.data)
        services.answer_friend(
            user=request.user, fid=data["fid"], accept=data["status"] == io.FriendAnswerInput.ACCEPT
        )
        return envelope(True)
