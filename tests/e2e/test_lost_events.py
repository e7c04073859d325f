"""A channel layer that loses events must never widen anyone's access.

The server runs with a layer that drops every member.left, token.revoked and
user.deactivated event (tests/e2e/lossy_layer.py): the events that used to be the only
thing that took a removed member's, a logged-out token's or a deactivated user's
connection out of a conversation. Who may read a group is decided by the database:
each group event carries the group's members version, a connection that has not seen
it asks the database before it pushes, repairs read for members only, and the
periodic tail check re-validates the session.
"""

import asyncio

import pytest

from tests.e2e.conftest import (
    connected,
    create_group,
    env_for_tests,
    history,
    in_thread,
    new_user,
    server_pool,
)
from tests.live import ApiError, api

pytestmark = pytest.mark.e2e

TAIL_CHECK = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_pool(tmp_path_factory.mktemp("lossy")) as pool:
        daphne = pool.new(
            "lossy",
            env_for_tests(
                DJANGO_SETTINGS_MODULE="tests.e2e.lossy_settings",
                RIM_TEST_DROP_EVENTS="member.left,token.revoked,user.deactivated",
                RIM_TAIL_CHECK_INTERVAL=str(TAIL_CHECK),
            ),
        )
        daphne.start()
        yield daphne


async def test_a_removed_member_whose_leave_event_was_lost_receives_nothing_more(server):
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    carol = await in_thread(new_user, server.http_url, "carol")
    gid = await in_thread(create_group, server.http_url, alice, [bob, carol])
    ca = await connected(server.ws_url, alice)
    cb = await connected(server.ws_url, bob)
    cc = await connected(server.ws_url, carol)
    try:
        before = (await ca.send_msg(gid, "bob may read this"))["serverMsgId"]
        assert (await cb.next_push())["body"]["msgId"] == before
        assert (await cc.next_push())["body"]["msgId"] == before

        await in_thread(
            api,
            server.http_url,
            "group/user/change",
            {"gid": gid, "uids": [bob.uid], "opType": 2},
            alice.token,
        )
        with pytest.raises(ApiError) as refused:
            await in_thread(history, server.http_url, bob, gid)
        assert refused.value.status == 403

        after = (await ca.send_msg(gid, "not for bob"))["serverMsgId"]
        assert (await cc.next_push())["body"]["msgId"] == after
        await ca.request("Typing", gid=gid)
        assert (await cc.next_push())["event"] == "Typing"
        assert await cb.quiet(1.0) == []
        # Nor through a repair: a later message after a hole reads for members only.
        assert (await cb.request("Heart"))["content"] == "Ok"
        assert (await cb.request("Msg", gid=gid, content="me?"))["content"] == "not_member"
        await ca.send_msg(gid, "still not for bob")
        assert await cb.quiet(1.0) == []
    finally:
        for client in (ca, cb, cc):
            await client.close()


async def test_a_connection_whose_token_was_revoked_stops_acting_at_the_next_tail_check(
    server,
):
    alice = await in_thread(new_user, server.http_url, "alice")
    bob = await in_thread(new_user, server.http_url, "bob")
    gid = await in_thread(create_group, server.http_url, alice, [bob])
    ca = await connected(server.ws_url, alice)
    cb = await connected(server.ws_url, bob)
    try:
        # bob logs out over REST: the token.revoked event never reaches the socket.
        assert await in_thread(api, server.http_url, "user/logout", {}, bob.token) is True
        await asyncio.sleep(TAIL_CHECK)
        assert (await cb.request("Heart"))["content"] == "Ok"
        refused = await cb.request("Msg", gid=gid, content="with a dead token")
        assert refused["content"] == "auth_failed"
        await ca.send_msg(gid, "after bob logged out")
        assert await cb.quiet(1.0) == []
    finally:
        await ca.close()
        await cb.close()
