"""The cost of a fan-out: a push is encoded once per message, whatever the number of
receiving connections, and the in-memory layer delivers it without copies or scans."""

import asyncio
import time

import pytest

from chat import consumers
from infra.layers import ProcessChannelLayer
from tests import ws_helpers

connect_fixture = ws_helpers.connect_fixture
team_fixture = ws_helpers.team_fixture


@pytest.mark.django_db(transaction=True)
async def test_a_push_is_encoded_once_for_all_receiving_connections(team, connect, monkeypatch):
    # Two devices of bob's, and alice's other device.
    receivers = [
        await connect(user=user, token=team.token(user))
        for user in (team.bob, team.bob, team.alice)
    ]
    alice = await connect(user=team.alice, token=team.token(team.alice))
    encoded = []
    original = consumers.wire.encode_msg_push

    def counting(**fields):
        encoded.append(fields["msg_id"])
        return original(**fields)

    monkeypatch.setattr(consumers.wire, "encode_msg_push", counting)
    msg_id = await alice.msg(team.gid, "one encoding, three receivers")
    for receiver in receivers:
        assert (await receiver.msg_push())["msgId"] == msg_id
    assert encoded == [msg_id]


async def test_the_process_layer_shares_one_event_among_receivers():
    layer = ProcessChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("g.1", channel)
    event = {"type": "chat.message", "push": "{}"}
    await layer.group_send("g.1", event)
    received = [await layer.receive(channel) for channel in channels]
    assert all(message is event for message in received)


async def test_a_consumer_that_falls_behind_loses_only_stale_messages_not_its_groups(
    monkeypatch,
):
    layer = ProcessChannelLayer(expiry=60)
    slow = await layer.new_channel()
    await layer.group_add("g.1", slow)
    await layer.group_send("g.1", {"type": "chat.message", "n": 1})
    # Past the deadline of the first event: the stock layer would evict `slow` from
    # every group here; this one drops the stale event and keeps the membership.
    later = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: later)
    layer.next_sweep = 0.0
    await layer.group_send("g.1", {"type": "chat.message", "n": 2})
    assert (await layer.receive(slow))["n"] == 2
    assert slow in layer.groups["g.1"]


async def test_a_full_channel_drops_group_sends_without_failing_the_sender():
    layer = ProcessChannelLayer(capacity=2)
    full = await layer.new_channel()
    await layer.group_add("g.1", full)
    for n in range(3):
        await layer.group_send("g.1", {"type": "chat.message", "n": n})
    assert [(await layer.receive(full))["n"] for _ in range(2)] == [0, 1]
    assert full not in layer.channels
    assert layer.dropped == 1


async def test_a_receive_cancelled_while_waiting_forgets_the_channel():
    layer = ProcessChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    assert channel in layer.channels
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert channel not in layer.channels


async def test_a_waiting_receiver_wakes_for_each_message_in_order():
    layer = ProcessChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "x", "n": 1})
    await layer.send(channel, {"type": "x", "n": 2})
    assert (await waiting)["n"] == 1
    assert (await layer.receive(channel))["n"] == 2
    assert channel not in layer.channels
