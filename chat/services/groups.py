"""Conversations and their members: create, rename, list, add, remove.

Every change of a group's members raises its members version and publishes what the
affected users' connections need (chat.events): the REST routes, the admin and the
friendship hook all come through here.
"""

from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.models import User
from chat import events
from chat.models import Group, Membership, ModerationLog
from chat.services.access import access_group, access_group_as_admin
from infra.errors import Forbidden, InvalidInput, NotFound

ADD = 1
REMOVE = 2


def pair_key(uid_a: int, uid_b: int) -> str:
    low, high = sorted((uid_a, uid_b))
    return f"{low}:{high}"


def _existing_users(uids: set[int]) -> set[int]:
    found = set(User.objects.filter(pk__in=uids, is_active=True).values_list("pk", flat=True))
    missing = uids - found
    if missing:
        raise NotFound(f"users not found: {sorted(missing)}")
    return found


def _next_members_version(group: Group) -> int:
    """Raise the version of `group`'s members (its row is locked or new)."""
    group.members_version += 1
    Group.objects.filter(pk=group.pk).update(members_version=F("members_version") + 1)
    return group.members_version


def _add_members(group: Group, roles: dict[int, int]) -> None:
    """New members start at the group's current seq: what came before is history, not
    unread."""
    if not roles:
        return
    version = _next_members_version(group)
    Membership.objects.bulk_create(
        [
            Membership(
                group=group,
                user_id=uid,
                role=role,
                joined_seq=group.last_seq,
                delivered_seq=group.last_seq,
                read_seq=group.last_seq,
                read_count=group.message_count,
            )
            for uid, role in roles.items()
        ]
    )
    for uid in roles:
        events.member_joined(uid=uid, gid=group.pk, seq=group.last_seq, members_version=version)


def _remove_members(group: Group, uids: set[int]) -> None:
    if not uids:
        return
    _next_members_version(group)
    Membership.objects.filter(group=group, user_id__in=uids).delete()
    for uid in uids:
        events.member_left(uid=uid, gid=group.pk)


@transaction.atomic
def create_group(
    *, creator: User, name: str, avatar: str, mode: int, members: dict[int, int]
) -> Group:
    """A new conversation; `members` maps uid → role. The creator is always an admin.
    A one-to-one chat (mode 1) has exactly one other member and is unique per pair."""
    others = {uid: role for uid, role in members.items() if uid != creator.pk}
    _existing_users(set(others))
    if mode == Group.ONE_TO_ONE:
        if len(others) != 1:
            raise InvalidInput("users: a one-to-one chat has exactly one other member")
        (other_id,) = others
        return open_direct_chat(user=creator, other_id=other_id, name=name, avatar=avatar)
    group = Group.objects.create(name=name, avatar=avatar, mode=mode, creator=creator)
    _add_members(group, {**others, creator.pk: Membership.ADMIN})
    return group


def open_direct_chat(*, user: User, other_id: int, name: str = "", avatar: str = "") -> Group:
    """The one-to-one chat of `user` and `other_id`, created if they have none."""
    key = pair_key(user.pk, other_id)
    with transaction.atomic():
        existing = Group.objects.filter(pair_key=key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                group = Group.objects.create(
                    name=name, avatar=avatar, mode=Group.ONE_TO_ONE, creator=user, pair_key=key
                )
        except IntegrityError:
            # A concurrent request created it first: use theirs.
            return Group.objects.get(pair_key=key)
        _add_members(group, {user.pk: Membership.ADMIN, other_id: Membership.ADMIN})
        return group


def open_chat_of_new_friends(*, user: User, friend_id: int, **kwargs) -> None:
    """accounts' friendship_confirmed: friends get their one-to-one chat."""
    open_direct_chat(user=user, other_id=friend_id)


@transaction.atomic
def update_group(*, user: User, gid: int, name: str, avatar: str) -> None:
    access_group_as_admin(user_id=user.pk, gid=gid)
    Group.objects.filter(pk=gid).update(name=name, avatar=avatar)


def list_groups(*, user: User, offset: int, limit: int) -> list[Group]:
    return list(
        Group.objects.filter(memberships__user=user).order_by("-pk")[offset : offset + limit]
    )


def list_members(*, user: User, gid: int, offset: int, limit: int) -> list[Membership]:
    access_group(user_id=user.pk, gid=gid)
    return list(
        Membership.objects.filter(group_id=gid)
        .select_related("user")
        .order_by("pk")[offset : offset + limit]
    )


def _locked_group(gid: int) -> Group:
    group = Group.objects.select_for_update().filter(pk=gid).first()
    if group is None:
        raise NotFound(f"group {gid} not found")
    if group.mode == Group.ONE_TO_ONE:
        raise Forbidden("a one-to-one chat has fixed members")
    return group


def _current_members(group: Group) -> set[int]:
    return set(Membership.objects.filter(group=group).values_list("user_id", flat=True))


@transaction.atomic
def change_members(*, user: User, gid: int, uids: list[int], op: int) -> None:
    """Add (admins) or remove (admins; anyone may remove itself) members. The affected
    users' open connections follow at once through their per-user layer group."""
    membership = access_group(user_id=user.pk, gid=gid)
    targets = set(uids)
    leaving_alone = op == REMOVE and targets == {user.pk}
    if membership.role != Membership.ADMIN and not leaving_alone:
        raise Forbidden("only a group admin may change members")
    group = _locked_group(gid)
    current = _current_members(group)
    if op == ADD:
        _add_members(group, dict.fromkeys(_existing_users(targets - current), Membership.MEMBER))
    else:
        _remove_members(group, targets & current)


@transaction.atomic
def moderate_members(
    *,
    moderator: User,
    gid: int,
    add: dict[int, int],
    remove: set[int],
    roles: dict[int, int],
) -> None:
    """A moderator's change of a group's members (the admin): the same joins and
    leaves as through the API, without being a member, and logged."""
    group = _locked_group(gid)
    current = _current_members(group)
    leaving = remove & current
    joining = {uid: role for uid, role in add.items() if uid not in current - leaving}
    _remove_members(group, leaving)
    _add_members(group, {uid: add[uid] for uid in _existing_users(set(joining))})
    for uid, role in roles.items():
        Membership.objects.filter(group=group, user_id=uid).update(role=role)
    ModerationLog.objects.create(
        moderator=moderator,
        action=ModerationLog.MEMBERS,
        group=group,
        detail=_members_detail(joining, leaving, roles),
    )


def _members_detail(joining: dict[int, int], leaving: set[int], roles: dict[int, int]) -> str:
    parts = []
    if joining:
        parts.append(f"added {sorted(joining)}")
    if leaving:
        parts.append(f"removed {sorted(leaving)}")
    if roles:
        parts.append(f"roles {dict(sorted(roles.items()))}")
    return "; ".join(parts) or "no change"


def group_ids_of(*, user_id: int) -> list[int]:
    return list(Membership.objects.filter(user_id=user_id).values_list("group_id", flat=True))


def direct_peers(*, user_id: int) -> list[int]:
    """The users who share a one-to-one chat with `user_id`."""
    return list(
        Membership.objects.filter(group__mode=Group.ONE_TO_ONE, group__memberships__user_id=user_id)
        .exclude(user_id=user_id)
        .values_list("user_id", flat=True)
    )


def sharing_a_group(*, user_id: int, uids: set[int]) -> set[int]:
    """Those of `uids` who are in at least one group with `user_id` (and the user)."""
    shared = set(
        Membership.objects.filter(user_id__in=uids, group__memberships__user_id=user_id)
        .values_list("user_id", flat=True)
        .distinct()
    )
    return shared | ({user_id} & uids)
