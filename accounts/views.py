"""REST routes for users, tokens and friends; thin over accounts.services."""

from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts import serializers as io
from accounts import services
from infra.api import envelope, page_bounds, validated
from infra.errors import Forbidden
from infra.throttling import AddressRateThrottle


class OpenView(APIView):
    """Routes that need no token. They ignore any Authorization header: rim's client
    sends a stale hard-coded one with them."""

    authentication_classes = []
    permission_classes = [AllowAny]


class CreateUser(OpenView):
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "register"

    def post(self, request):
        data = validated(io.CreateUserInput, request.data)
        return envelope(services.create_user(**data).pk)


class Login(OpenView):
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "login"

    def post(self, request):
        data = validated(io.LoginInput, request.data)
        return envelope(services.issue_token(**data))


class Logout(APIView):
    def post(self, request):
        services.revoke_token(token_id=request.auth.token_id)
        return envelope(True)


class GetUser(APIView):
    def get(self, request):
        uid = validated(io.UidQuery, request.query_params)["uid"]
        # An email is personal: only its owner (and staff) see it.
        own = uid == request.user.pk or request.user.is_staff
        return envelope(io.user_data(services.get_user(uid=uid), with_email=own))


class UserForToken(APIView):
    def get(self, request):
        key = validated(io.TokenQuery, request.query_params)["token"]
        session = services.session_for_token(key=key)
        if session is None or session.user.pk != request.user.pk:
            raise Forbidden("that token is not yours")
        return envelope(io.user_data(session.user))


class SearchUser(APIView):
    throttle_classes = [AddressRateThrottle]
    throttle_scope = "search"

    def get(self, request):
        account = validated(io.AccountQuery, request.query_params)["account"]
        return envelope(io.user_data(services.find_user(account=account), with_email=False))


class AddFriend(APIView):
    def post(self, request):
        fid = validated(io.FriendInput, request.data)["fid"]
        services.request_friend(user=request.user, fid=fid)
        return envelope(True)


class ListFriends(APIView):
    def get(self, request):
        query = validated(io.FriendListQuery, request.query_params)
        offset, limit = page_bounds(query)
        users = services.list_friends(
            user=request.user, status=query["status"], offset=offset, limit=limit
        )
        return envelope([io.user_data(user) for user in users])


class AnswerFriend(APIView):
    def post(self, request):
        data = validated(io.FriendAnswerInput, request.data)
        services.answer_friend(
            user=request.user, fid=data["fid"], accept=data["status"] == io.FriendAnswerInput.ACCEPT
        )
        return envelope(True)
