"""The per-connection token bucket (infra.ratelimit) and how the consumer applies it."""

import pytest

from infra.ratelimit import TokenBucket
from tests import ws_helpers
from tests.ws_helpers import (
    assert_error_ack,
    ok_ack,
)

# The shared fixtures, under the names tests ask for (see tests/ws_helpers.py).
connect_fixture = ws_helpers.connect_fixture
team_fixture = ws_helpers.team_fixture


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bucket(rate: float, burst: int) -> tuple[TokenBucket, Clock]:
    clock = Clock()
    return TokenBucket(rate=rate, burst=burst, clock=clock), clock


def test_a_full_burst_passes_then_the_bucket_refuses():
    limiter, _ = bucket(rate=1, burst=3)
    assert [limiter.take() for _ in range(5)] == [True, True, True, False, False]


def test_tokens_come_back_at_the_rate():
    limiter, clock = bucket(rate=2, burst=3)
    for _ in range(3):
        limiter.take()
    assert not limiter.take()
    clock.now += 0.49
    assert not limiter.take()
    clock.now += 0.02
    assert limiter.take()
    assert not limiter.take()


def test_refill_never_exceeds_the_burst():
    limiter, clock = bucket(rate=10, burst=2)
    clock.now += 3600
    assert [limiter.take() for _ in range(3)] == [True, True, False]


def test_refused_takes_do_not_spend_tokens():
    limiter, clock = bucket(rate=1, burst=1)
    assert limiter.take()
    for _ in range(10):
        assert not limiter.take()
    clock.now += 1.0
    assert limiter.take()


def test_sustained_rate_is_the_configured_one():
    limiter, clock = bucket(rate=4, burst=1)
    allowed = 0
    for _ in range(80):  # ten seconds in steps of 1/8 s, half a token each
        clock.now += 0.125
        allowed += limiter.take()
    assert allowed == 40


def test_rate_zero_disables_the_limit():
    limiter, _ = bucket(rate=0, burst=0)
    assert all(limiter.take() for _ in range(10_000))


# -- in the consumer (a single refusal: tests/test_ws_errors.py) -----------------------


@pytest.mark.django_db(transaction=True)
async def test_a_full_burst_of_refusals_in_a_row_closes_the_connection(settings, team, connect):
    settings.RIM_RATE_LIMIT = 0.01
    settings.RIM_RATE_BURST = 3
    alice = await connect()
    sent = [await alice.send_event("Heart") for _ in range(6)]
    for client_msg_id in sent[:3]:
        assert await alice.ack(client_msg_id) == ok_ack(client_msg_id)
    for client_msg_id in sent[3:]:
        assert_error_ack(await alice.ack(client_msg_id), "rate_limited", client_msg_id)
    await alice.expect_close(4008)


@pytest.mark.django_db(transaction=True)
async def test_each_connection_has_its_own_bucket(settings, team, connect):
    settings.RIM_RATE_LIMIT = 0.01
    settings.RIM_RATE_BURST = 2
    first = await connect(user=team.alice, token=team.token(team.alice))
    second = await connect(user=team.alice, token=team.token(team.alice))
    await first.assert_open()
    refused = await first.send_event("Heart")
    assert_error_ack(await first.ack(refused), "rate_limited", refused)
    await second.assert_open()
