"""Django admin moderation: pages load for a superuser, tokens are never shown usable,
and deactivating a user (action or change form) locks it out at once."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.events import user_channel
from accounts.models import Friendship, Token, User
from chat.events import group_channel
from chat.models import Group, Membership, Message, ModerationLog
from infra.api import LOGIN_REQUIRED
from tests.rest_helpers import call, direct_chat, events_published, group_of, ok, send


@pytest.fixture
def admin_client(db):
    root = User.objects.create_superuser(account="root", password="root-password")
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def alice(make_user):
    return make_user("alice", email="alice@example.org")


def page(client, name: str, *args, **query) -> str:
    response = client.get(reverse(name, args=args), query)
    assert response.status_code == 200
    return response.content.decode()


def result_rows(html: str) -> int:
    return html.count('class="action-select"')


def assert_locked_out(api_client, user, token: str) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    status, body = call(api_client, "user/get", uid=user.pk)
    assert (status, body["msg"]) == (401, LOGIN_REQUIRED)
    api_client.credentials()
    status, _ = call(api_client, "user/login", {"account": user.account, "password": "secret-pw"})
    assert status == 401
    assert not Token.objects.filter(user=user).exists()


def test_admin_needs_a_staff_login(client, alice):
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_admin_index_lists_the_rim_models(admin_client):
    html = page(admin_client, "admin:index")
    for name in ("users", "tokens", "friendships", "groups", "messages"):
        assert name in html.lower()


def test_user_search_by_account_finds_that_user(admin_client, alice, bob):
    html = page(admin_client, "admin:accounts_user_changelist", q="alice")
    assert "alice@example.org" in html
    assert ">bob<" not in html
    assert result_rows(html) == 1


def test_user_change_page_loads_without_the_password_hash(admin_client, alice):
    html = page(admin_client, "admin:accounts_user_change", alice.pk)
    assert "alice@example.org" in html
    assert alice.password not in html


def test_group_change_page_shows_its_memberships_inline(admin_client, alice, bob, make_user):
    group = group_of(alice, bob, make_user("carol"), name="moderated")
    html = page(admin_client, "admin:chat_group_change", group.pk)
    assert "moderated" in html
    assert 'name="memberships-TOTAL_FORMS" value="3"' in html
    for user in (alice, bob):
        assert f'value="{user.pk}"' in html


def group_form(group, *, add=(), delete=(), roles=None, replace=None) -> dict:
    """The group change form as the admin posts it, with the inline memberships."""
    memberships = list(Membership.objects.filter(group=group).order_by("pk"))
    data = {
        "name": group.name,
        "avatar": group.avatar,
        "mode": group.mode,
        "creator": group.creator_id,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": len(memberships) + len(add),
        "memberships-INITIAL_FORMS": len(memberships),
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
    }
    swap = {old.pk: new.pk for old, new in (replace or {}).items()}
    rows = [
        (m.pk, swap.get(m.user_id, m.user_id), (roles or {}).get(m.user_id, m.role))
        for m in memberships
    ]
    rows += [("", user.pk, Membership.MEMBER) for user in add]
    for index, (pk, uid, role) in enumerate(rows):
        prefix = f"memberships-{index}-"
        data.update({prefix + "id": pk, prefix + "group": group.pk, prefix + "user": uid})
        data[prefix + "role"] = role
        if uid in {user.pk for user in delete}:
            data[prefix + "DELETE"] = "on"
    return data


def post_group_form(client, group, **changes):
    response = client.post(
        reverse("admin:chat_group_change", args=[group.pk]), group_form(group, **changes)
    )
    assert response.status_code == 302, response.content.decode()[:3000]


def test_member_added_in_the_admin_starts_at_the_current_seq(
    admin_client, settings, alice, bob, make_user
):
    carol = make_user("carol")
    group = group_of(alice, bob)
    send(alice, group)
    send(bob, group)
    events = events_published(
        settings, user_channel(carol.pk), lambda: post_group_form(admin_client, group, add=[carol])
    )
    membership = Membership.objects.get(group=group, user=carol)
    assert (membership.joined_seq, membership.delivered_seq, membership.read_seq) == (2, 2, 2)
    group.refresh_from_db()
    assert events == [
        {"type": "member.joined", "gid": group.pk, "seq": 2, "mv": group.members_version}
    ]


def test_member_removed_in_the_admin_loses_access_at_once(
    admin_client, api_client, settings, alice, bob, token_for
):
    group = group_of(alice, bob)
    events = events_published(
        settings, user_channel(bob.pk), lambda: post_group_form(admin_client, group, delete=[bob])
    )
    assert events == [{"type": "member.left", "gid": group.pk}]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(bob)}")
    assert call(api_client, "message/history", {"gid": group.pk})[0] == 403


def test_membership_moved_to_another_user_in_the_admin_is_a_leave_and_a_join(
    admin_client, settings, alice, bob, make_user
):
    carol = make_user("carol")
    group = group_of(alice, bob)
    send(alice, group)
    events = events_published(
        settings,
        [user_channel(bob.pk), user_channel(carol.pk)],
        lambda: post_group_form(admin_client, group, replace={bob: carol}),
    )
    group.refresh_from_db()
    assert events == [
        {"type": "member.left", "gid": group.pk},
        {"type": "member.joined", "gid": group.pk, "seq": 1, "mv": group.members_version},
    ]
    membership = Membership.objects.get(group=group, user=carol)
    assert (membership.delivered_seq, membership.read_seq) == (1, 1)
    assert not Membership.objects.filter(group=group, user=bob).exists()


def test_role_changed_in_the_admin_is_saved_without_membership_events(
    admin_client, settings, alice, bob
):
    group = group_of(alice, bob)
    events = events_published(
        settings,
        user_channel(bob.pk),
        lambda: post_group_form(admin_client, group, roles={bob.pk: Membership.ADMIN}),
    )
    assert Membership.objects.get(group=group, user=bob).role == Membership.ADMIN
    assert events == []


def test_one_to_one_chat_shows_its_pair_but_the_admin_cannot_change_it(
    admin_client, settings, alice, bob, make_user
):
    """Its members are shown read-only, and a crafted post that adds, removes or
    replaces one changes nothing and tells no one."""
    carol = make_user("carol")
    chat = direct_chat(alice, bob)
    html = page(admin_client, "admin:chat_group_change", chat.pk)
    assert 'name="memberships-0-user"' not in html
    assert 'name="mode"' not in html
    assert alice.account in html and bob.account in html
    for change in ({"add": [carol]}, {"delete": [bob]}, {"replace": {bob: carol}}):
        events = events_published(
            settings,
            [user_channel(u.pk) for u in (alice, bob, carol)],
            lambda change=change: post_group_form(admin_client, chat, **change),
        )
        assert events == []
        members = Membership.objects.filter(group=chat).values_list("user_id", flat=True)
        assert sorted(members) == sorted([alice.pk, bob.pk])


def test_conversations_are_not_created_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:chat_group_add"))
    assert response.status_code == 403


def test_group_mode_is_shown_not_edited(admin_client, alice, bob):
    group = group_of(alice, bob)
    html = page(admin_client, "admin:chat_group_change", group.pk)
    assert 'name="mode"' not in html
    data = group_form(group)
    data["mode"] = Group.ONE_TO_ONE
    admin_client.post(reverse("admin:chat_group_change", args=[group.pk]), data)
    group.refresh_from_db()
    assert group.mode == Group.GROUP


def test_group_changelist_loads(admin_client, alice, bob):
    group_of(alice, bob, name="listed-group")
    assert "listed-group" in page(admin_client, "admin:chat_group_changelist")


def test_message_list_shows_sender_group_and_time(admin_client, alice, bob):
    group = group_of(alice, bob, name="the-group")
    send(bob, group, "visible content")
    html = page(admin_client, "admin:chat_message_changelist")
    assert "visible content" in html
    assert "the-group" in html and ">bob<" in html
    for column in ("sender", "group", "created"):
        assert f"column-{column}" in html


def test_message_list_filters_by_group(admin_client, alice, bob):
    first, second = group_of(alice, bob, name="first"), group_of(alice, bob, name="second")
    send(alice, first, "in first")
    send(alice, second, "in second")
    html = page(admin_client, "admin:chat_message_changelist", group__id__exact=first.pk)
    assert "in first" in html and "in second" not in html


def test_message_list_filters_by_sender(admin_client, alice, bob):
    group = group_of(alice, bob)
    send(alice, group, "from alice")
    send(bob, group, "from bob")
    html = page(admin_client, "admin:chat_message_changelist", sender__id__exact=bob.pk)
    assert "from bob" in html and "from alice" not in html


def test_message_list_searches_content(admin_client, alice, bob):
    group = group_of(alice, bob)
    send(alice, group, "needle in a haystack")
    send(alice, group, "just hay")
    html = page(admin_client, "admin:chat_message_changelist", q="needle")
    assert "needle in a haystack" in html and "just hay" not in html


def test_message_change_page_loads(admin_client, alice, bob):
    message = send(alice, direct_chat(alice, bob), "open me")
    assert "open me" in page(admin_client, "admin:chat_message_change", message.pk)


def recall_in_admin(client, *messages) -> None:
    response = client.post(
        reverse("admin:chat_message_changelist"),
        {"action": "recall", "_selected_action": [m.pk for m in messages]},
    )
    assert response.status_code == 302


def test_recall_action_erases_the_message_keeps_its_row_and_logs_who(admin_client, alice, bob):
    message = send(alice, group_of(alice, bob), "offensive")
    recall_in_admin(admin_client, message)
    message.refresh_from_db()
    assert (message.content, message.recalled, message.seq) == ("", True, 1)
    assert Message.objects.count() == 1
    (entry,) = ModerationLog.objects.all()
    assert (entry.moderator.account, entry.action, entry.message_id) == (
        "root",
        "recall",
        message.pk,
    )
    html = page(admin_client, "admin:chat_moderationlog_changelist")
    assert "root" in html and "recalled a message" in html


def test_recall_in_the_admin_pushes_what_a_group_admin_recall_pushes(
    admin_client, client_for, settings, alice, bob
):
    """A moderator's recall is a recall by a group admin: one Recall entry in the
    group's sequence, the same push (but for who acted)."""
    group = group_of(alice, bob)
    by_moderator = send(bob, group, "first")
    by_admin = send(bob, group, "second")
    moderated = events_published(
        settings, group_channel(group.pk), lambda: recall_in_admin(admin_client, by_moderator)
    )
    client = client_for(alice)
    recalled = events_published(
        settings,
        group_channel(group.pk),
        lambda: ok(client, "message/recall", {"gid": group.pk, "msgId": by_admin.pk}),
    )
    shapes = []
    for (event,) in (moderated, recalled):
        body = json.loads(event["push"])["body"]
        assert (event["type"], event["gid"], event["origin"]) == ("chat.entry", group.pk, None)
        shapes.append((json.loads(event["push"])["event"], body["content"], sorted(body)))
    assert (
        shapes[0]
        == shapes[1]
        == (
            "Recall",
            "",
            ["clientMsgId", "content", "gid", "kind", "msgId", "seq", "uid"],
        )
    )
    assert [e["seq"] for e in moderated + recalled] == [3, 4]


def test_friendship_changelist_loads(admin_client, alice, bob):
    Friendship.objects.create(from_user=alice, to_user=bob)
    html = page(admin_client, "admin:accounts_friendship_changelist")
    assert result_rows(html) == 1


def test_token_list_never_shows_a_usable_key(admin_client, alice, token_for):
    key = token_for(alice)
    stored = Token.objects.get(user=alice)
    html = page(admin_client, "admin:accounts_token_changelist")
    assert result_rows(html) == 1 and ">alice<" in html
    assert key not in html
    assert key.replace("-", "") not in html
    assert stored.key_hash not in html


def test_token_change_page_never_shows_a_usable_key(admin_client, alice, token_for):
    key = token_for(alice)
    stored = Token.objects.get(user=alice)
    html = page(admin_client, "admin:accounts_token_change", stored.pk)
    assert key not in html and stored.key_hash not in html


def test_tokens_cannot_be_added_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:accounts_token_add"))
    assert response.status_code == 403


def test_deleting_a_token_in_the_admin_revokes_it(admin_client, api_client, alice, token_for):
    key = token_for(alice)
    stored = Token.objects.get(user=alice)
    response = admin_client.post(
        reverse("admin:accounts_token_delete", args=[stored.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert call(api_client, "user/get", uid=alice.pk)[0] == 401


def test_deactivate_action_revokes_tokens_and_blocks_login(
    admin_client, api_client, alice, bob, token_for
):
    key = token_for(alice)
    bobs_key = token_for(bob)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert call(api_client, "user/get", uid=alice.pk)[0] == 200
    response = admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "deactivate", "_selected_action": [alice.pk]},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_active
    assert_locked_out(api_client, alice, key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {bobs_key}")
    assert call(api_client, "user/get", uid=bob.pk)[0] == 200


def test_deactivate_action_tells_the_users_open_connections(admin_client, settings, alice):
    events = events_published(
        settings,
        user_channel(alice.pk),
        lambda: admin_client.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "deactivate", "_selected_action": [alice.pk]},
        ),
    )
    assert {"type": "user.deactivated"} in events


def test_deactivating_in_the_change_form_revokes_tokens_and_blocks_login(
    admin_client, api_client, alice, token_for
):
    key = token_for(alice)
    form = {
        "account": "alice",
        "name": "Alice",
        "avatar": "",
        "email": "alice@example.org",
        # is_active left out: the checkbox is unticked.
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "last_login_0": "",
        "last_login_1": "",
    }
    response = admin_client.post(reverse("admin:accounts_user_change", args=[alice.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert not alice.is_active
    assert_locked_out(api_client, alice, key)
