"""infra.layers against a real Redis: closing consumers must end their receive, not be
mistaken for a Redis outage; a channel that is not read holds at most its capacity."""

import asyncio
import logging
import uuid

import pytest

from infra import metrics
from infra.layers import RetryingRedisChannelLayer, RimPubSubLayer
from tests.live import REDIS_URL

pytestmark = pytest.mark.services


async def test_a_receive_cancelled_as_it_starts_ends_cancelled_not_retried(caplog):
    # A consumer that closes right after handling a layer event cancels the receive it
    # just restarted. redis-py can turn that cancellation into a read timeout 5 s
    # later; retrying it as an outage kept the dead consumer receiving (and rejoining
    # every group of the process) until daphne killed it.
    layer = RetryingRedisChannelLayer(hosts=[REDIS_URL])
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("cancel-test", first)
    await layer.group_add("cancel-test", second)
    try:
        receives = [asyncio.ensure_future(layer.receive(c)) for c in (first, second)]
        await layer.group_send("cancel-test", {"type": "ping"})
        assert [await r for r in receives] == [{"type": "ping"}] * 2

        with caplog.at_level(logging.WARNING, logger="rim.layer"):
            receives = [asyncio.ensure_future(layer.receive(c)) for c in (first, second)]
            await asyncio.sleep(0)
            for receive in reversed(receives):
                receive.cancel()
                done, _ = await asyncio.wait([receive], timeout=8)
                assert done, "a cancelled receive went on receiving"
                assert receive.cancelled()
        assert not [r for r in caplog.records if "layer_receive_failed" in r.getMessage()]
    finally:
        await layer.group_discard("cancel-test", first)
        await layer.group_discard("cancel-test", second)
        await layer.close_pools()


async def test_a_pubsub_channel_that_is_not_read_holds_at_most_its_capacity():
    layer = RimPubSubLayer(hosts=[REDIS_URL], prefix=f"captest{uuid.uuid4().hex[:8]}", capacity=3)
    slow, quick = await layer.new_channel(), await layer.new_channel()
    group = "capacity-test"
    dropped = metrics.LAYER_DROPS.labels("channel_full")
    try:
        await layer.group_add(group, slow)
        await layer.group_add(group, quick)
        before = dropped._value.get()
        got = []
        for number in range(5):
            await layer.group_send(group, {"type": "n", "n": number})
            got.append(await asyncio.wait_for(layer.receive(quick), 5))
        assert [message["n"] for message in got] == [0, 1, 2, 3, 4]
        assert [(await layer.receive(slow))["n"] for _ in range(3)] == [0, 1, 2]
        assert dropped._value.get() - before == 2
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(slow), 0.3)
    finally:
        await layer.flush()
