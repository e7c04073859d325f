"""Account operations: registration, login tokens, friendships.

Plain synchronous functions, each one transaction, called by the REST views, the
admin and the WebSocket consumer alike. accounts knows nothing of conversations: what
they do when two users become friends hangs on `friendship_confirmed`.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts import events, lockout
from accounts.models import Friendship, Token, User
from accounts.signals import friendship_confirmed
from infra.errors import AuthFailed, Conflict, InvalidInput, NotFound


@dataclass(frozen=True)
class Session:
    """The user a token stands for, and until when."""

    user: User
    token_id: int
    expires_at: datetime


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_user(
    *, account: str, password: str, name: str, avatar: str = "", email: str = ""
) -> User:
    user = User(account=account, name=name, avatar=avatar, email=email)
    # Hashed before the transaction opens: the hash takes a fraction of a second, and
    # may wait for the password thread, while SQLite's write lock would stop every
    # other writer.
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise Conflict(f"account {account!r} already exists") from None
    return user


def issue_token(*, account: str, password: str) -> str:
    """Log in: a new token per call (one per device). Same error for an unknown account
    and a wrong password, so that accounts cannot be probed; failures in a row lock
    the account for a while (accounts.lockout)."""
    lockout.refuse_if_locked(account)
    user = authenticate(username=account, password=password)
    if user is None:
        lockout.login_failed(account)
        raise AuthFailed("wrong account or password")
    # Failures that ran alongside this check may have locked the account meanwhile:
    # a guess that happens to be right is refused like the others then.
    lockout.refuse_if_locked(account)
    lockout.login_succeeded(account)
    key = str(uuid.uuid4())
    Token.objects.create(
        key_hash=hash_token(key),
        user=user,
        expires_at=timezone.now() + timedelta(seconds=settings.RIM_TOKEN_TTL),
    )
    return key


SESSION_ALIVE = "alive"
SESSION_ENDED = "ended"
SESSION_DEACTIVATED = "deactivated"


def session_for_token(*, key: str) -> Session | None:
    """The live session of `key`: None if unknown, expired, revoked or its user is
    deactivated."""
    token = (
        Token.objects.select_related("user")
        .filter(key_hash=hash_token(key), expires_at__gt=timezone.now(), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    return Session(user=token.user, token_id=token.pk, expires_at=token.expires_at)


def session_status(*, user_id: int, token_id: int) -> str:
    """Whether a bound connection's session still stands: alive, ended (its token
    expired or was revoked) or deactivated (its user was; that deletes the tokens
    too, so the user is asked first). One query."""
    token_alive = Token.objects.filter(
        pk=token_id, user=OuterRef("pk"), expires_at__gt=timezone.now()
    )
    row = (
        User.objects.filter(pk=user_id)
        .annotate(token_alive=Exists(token_alive))
        .values_list("is_active", "token_alive")
        .first()
    )
    if row is None or not row[0]:
        return SESSION_DEACTIVATED
    return SESSION_ALIVE if row[1] else SESSION_ENDED


@transaction.atomic
def revoke_token(*, token_id: int) -> None:
    token = Token.objects.filter(pk=token_id).first()
    if token is None:
        return
    token.delete()
    events.token_revoked(uid=token.user_id, token_id=token_id)


@transaction.atomic
def deactivate_user(*, user: User) -> None:
    """Lock the user out: no login, no token, and every open connection closed."""
    User.objects.filter(pk=user.pk).update(is_active=False)
    Token.objects.filter(user=user).delete()
    events.user_deactivated(uid=user.pk)


def get_user(*, uid: int) -> User:
    user = User.objects.filter(pk=uid).first()
    if user is None:
        raise NotFound(f"user {uid} not found")
    return user


def find_user(*, account: str) -> User:
    """An active user by exact account: a deactivated one cannot be befriended, so it
    is not found either."""
    user = User.objects.filter(account=account, is_active=True).first()
    if user is None:
        raise NotFound("no user with that account")
    return user


@transaction.atomic
def request_friend(*, user: User, fid: int) -> None:
    """A friend request from `user` to `fid`; repeating it, or asking a friend, is a
    no-op."""
    if fid == user.pk:
        raise InvalidInput("fid: you cannot befriend yourself")
    if not User.objects.filter(pk=fid, is_active=True).exists():
        raise NotFound(f"user {fid} not found")
    Friendship.objects.get_or_create(from_user=user, to_user_id=fid)


@transaction.atomic
def answer_friend(*, user: User, fid: int, accept: bool) -> None:
    """Answer `fid`'s request to `user`: accept makes both friends and opens their
    one-to-one chat if they have none; reject deletes the request."""
    # Both directions of the pair are locked in one statement, in id order: confirming
    # touches both edges, and two users answering each other's requests at once would
    # otherwise lock them in opposite orders and deadlock.
    edges = (
        Friendship.objects.select_for_update()
        .filter(Q(from_user_id=fid, to_user=user) | Q(from_user=user, to_user_id=fid))
        .order_by("pk")
    )
    request = next(
        (e for e in edges if e.from_user_id == fid and e.status == Friendship.APPLY), None
    )
    if request is None:
        raise NotFound(f"no friend request from user {fid}")
    if not accept:
        request.delete()
        return
    request.status = Friendship.FRIENDS
    request.save(update_fields=["status"])
    Friendship.objects.update_or_create(
        from_user=user, to_user_id=fid, defaults={"status": Friendship.FRIENDS}
    )
    friendship_confirmed.send(sender=Friendship, user=user, friend_id=fid)


def list_friends(*, user: User, status: int, offset: int, limit: int) -> list[User]:
    """status 1: the user's friends; 0: requests waiting for the user's answer."""
    if status == Friendship.FRIENDS:
        edges = Q(friendships_in__from_user=user, friendships_in__status=Friendship.FRIENDS)
    else:
        edges = Q(friendships_out__to_user=user, friendships_out__status=Friendship.APPLY)
    return list(User.objects.filter(edges).order_by("pk")[offset : offset + limit])
