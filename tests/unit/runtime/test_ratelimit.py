"""The public rate limit: a token bucket per client, refilled over time, with the wait it tells."""

import pytest

from estafette.runtime.ratelimit import RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_may_burst_then_waits_for_the_bucket_to_refill():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        limiter.take("10.0.0.1")
    assert refused.value.retry_after == 1  # one token a second
    clock.now += 1
    limiter.take("10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.take("10.0.0.1")


def test_retry_after_is_the_whole_seconds_until_a_token_is_back():
    clock = Clock()
    limiter = RateLimiter(per_minute=4, burst=1, clock=clock)  # one token every 15 s
    limiter.take("a")
    clock.now += 5
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after == 10


def test_clients_have_buckets_of_their_own():
    limiter = RateLimiter(per_minute=60, burst=1, clock=Clock())
    limiter.take("a")
    limiter.take("b")
    with pytest.raises(RateLimited):
        limiter.take("a")


def test_a_bucket_never_holds_more_than_the_burst():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    limiter.take("a")
    clock.now += 3600
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")


def test_zero_per_minute_turns_the_limit_off():
    limiter = RateLimiter(per_minute=0, burst=1, clock=Clock())
    for _ in range(1000):
        limiter.take("a")


def test_refilled_buckets_are_forgotten_so_memory_stays_bounded():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock, max_clients=100)
    for i in range(100):
        limiter.take(f"10.0.{i}.1")
    clock.now += 2  # every bucket is full again
    limiter.take("new")
    assert len(limiter._buckets) == 1
