"""The failure counters behind sign-in throttling: sliding windows over any rolling period, a place
reserved before the password is checked, given back when the attempt was not a failure."""

import datetime
import secrets

import pytest
import time_machine
from django.core.cache import caches
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.throttle import (
    Counter,
    FailureLimit,
    failures_clear,
    failures_count,
    failures_release,
    failures_reserve,
)
from campusiq.core.cache import failover_caches
from campusiq.core.models import RateCounter
from tests.conftest import redis_url
from tests.core.test_cache import fresh_circuits  # noqa: F401  (fixture)
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db
T0 = 1_800_000_000  # a fixed Unix time, so bucket boundaries are known


def counter(rate: str, subject: str = "someone", **kwargs) -> Counter:
    return Counter(FailureLimit.parse("account", rate), subject, **kwargs)


def fail(counters: list[Counter], now: int):
    """An attempt that failed: its reservation stands."""
    return failures_reserve(counters, now=now)


def test_rates_parse_like_django_ratelimit():
    assert FailureLimit.parse("x", "5/15m") == FailureLimit("x", 5, 900)
    assert FailureLimit.parse("x", "100/h") == FailureLimit("x", 100, 3600)
    assert FailureLimit.parse("x", "300/d").period == 86400
    hour = FailureLimit.parse("x", "100/h")
    # Buckets of 5 minutes, 13 of them summed: never less than the whole hour back from now.
    assert (hour.bucket_seconds, hour.span) == (300, 13)
    assert (hour.span - 1) * hour.bucket_seconds >= hour.period


def test_the_attempt_over_the_limit_is_refused_and_not_counted():
    account = counter("5/15m")
    for _ in range(5):
        assert fail([account], T0).refusal is None
    refused = failures_reserve([account], now=T0)
    assert refused.refusal is not None and refused.refusal.scope == "account"
    assert failures_count(account, now=T0) == 5  # the refused attempt gave its place back
    # Refusals do not extend the wait: hammering changes nothing.
    for _ in range(20):
        failures_reserve([account], now=T0 + 60)
    assert failures_count(account, now=T0 + 60) == 5


def test_the_wait_is_until_enough_failures_have_left_the_window():
    account = counter("5/15m")  # buckets of 75 s, 13 summed
    for _ in range(5):
        fail([account], T0)
    refusal = failures_reserve([account], now=T0 + 10).refusal
    bucket_start = T0 - T0 % 75
    assert refusal.retry_after == bucket_start + 13 * 75 - (T0 + 10)
    assert 900 - 75 <= refusal.retry_after <= 900 + 75
    # One second before that, still refused; at that moment, allowed again.
    assert failures_reserve([account], now=T0 + 10 + refusal.retry_after - 1).refusal is not None
    assert failures_reserve([account], now=T0 + 10 + refusal.retry_after).refusal is None


def test_the_wait_counts_only_the_oldest_failures_that_must_leave():
    account = counter("5/15m")
    fail([account], T0)
    for _ in range(4):
        fail([account], T0 + 600)
    refusal = failures_reserve([account], now=T0 + 610).refusal
    # Once the single oldest failure leaves, four remain: one more attempt fits.
    assert refusal.retry_after == (T0 - T0 % 75) + 13 * 75 - (T0 + 610)


def test_a_limit_holds_over_any_rolling_window_not_per_clock_hour():
    """100 failures at 10:59 and 100 more at 11:01 would pass a fixed hourly window; not this one."""
    account = counter("100/h")
    end_of_hour = T0 - T0 % 3600 + 3599
    for _ in range(100):
        assert fail([account], end_of_hour).refusal is None
    allowed = 0
    for second in range(2, 3600, 30):  # every 30 s through the next hour
        if failures_reserve([account], now=end_of_hour + second).refusal is None:
            allowed += 1
    assert allowed == 0
    assert failures_reserve([account], now=end_of_hour + 3600 + 300).refusal is None


def test_a_released_reservation_is_not_a_failure():
    account = counter("5/15m")
    for _ in range(20):
        failures_release(failures_reserve([account], now=T0))
    assert failures_count(account, now=T0) == 0


def test_the_refusal_with_the_longest_wait_wins_and_nothing_is_counted():
    short, long = counter("2/m", "a"), Counter(FailureLimit.parse("ip", "2/h"), "b")
    for _ in range(2):
        fail([short, long], T0)
    refusal = failures_reserve([short, long], now=T0).refusal
    assert refusal.scope == "ip" and refusal.retry_after > 60
    assert failures_count(short, now=T0) == 2 and failures_count(long, now=T0) == 2


def test_an_unenforced_counter_counts_but_never_refuses():
    watched = counter("1/h", enforced=False)
    for _ in range(5):
        assert fail([watched], T0).refusal is None
    assert failures_count(watched, now=T0) == 5


def test_clear_forgets_a_subject_only():
    mine, theirs = counter("5/15m", "mine"), counter("5/15m", "theirs")
    for _ in range(3):
        fail([mine, theirs], T0)
    failures_clear(mine, now=T0 + 1)
    assert failures_count(mine, now=T0 + 1) == 0 and failures_count(theirs, now=T0 + 1) == 3


def test_cache_keys_never_show_the_subject():
    who = counter("5/15m", "ana@campus.example")
    assert all("ana" not in key for key, _ in who.buckets(T0))


def test_a_day_long_window_keeps_its_failures_on_the_database_cache():
    """Django's incr() re-sets a value with the cache's default 5-minute timeout; the counters must not."""
    daily = Counter(FailureLimit.parse("ip_day", "3/d"), "address")
    with time_machine.travel(datetime.datetime(2026, 11, 25, 8, tzinfo=datetime.UTC), tick=False) as clock:
        for _ in range(3):
            assert failures_reserve([daily]).refusal is None
            clock.shift(datetime.timedelta(hours=2))
        assert failures_count(daily) == 3
        refused = failures_reserve([daily]).refusal
        assert refused is not None and refused.retry_after > 12 * 3600


def test_counting_goes_on_in_the_table_while_redis_is_down(fresh_circuits):  # noqa: F811
    with override_settings(CACHES=failover_caches(f"redis://127.0.0.1:{free_port()}/0")):
        account = counter("2/15m")
        assert fail([account], T0).refusal is None and fail([account], T0).refusal is None
        assert failures_reserve([account], now=T0).refusal is not None  # never open while Redis is down
        assert failures_count(account, now=T0) == 2
        assert RateCounter.objects.filter(key__startswith="signin:").exists()


def test_without_a_fallback_a_redis_failure_is_an_error_not_an_uncounted_attempt(settings):
    dead = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    settings.CACHES = {**settings.CACHES, "ratelimit": dead}
    with pytest.raises(RedisConnectionError):
        failures_reserve([counter("5/15m")], now=T0)


@pytest.mark.redis
def test_counters_on_the_real_redis(settings):
    settings.CACHES = {
        **settings.CACHES,
        "ratelimit": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url()},
    }
    run = secrets.token_hex(4)  # the database may be shared: touch only this run's keys, never flush
    account, address = counter("5/15m", f"account-{run}"), counter("30/15m", f"address-{run}")
    try:
        for _ in range(5):
            assert fail([account, address], T0).refusal is None
        refused = failures_reserve([account, address], now=T0 + 5)
        assert refused.refusal.scope == "account" and refused.refusal.retry_after > 800
        assert failures_count(account, now=T0 + 5) == 5 and failures_count(address, now=T0 + 5) == 5
        failures_release(failures_reserve([address], now=T0 + 5))
        assert failures_count(address, now=T0 + 5) == 5
        # Keys expire on their own: nothing outlives its window by more than a bucket and a minute.
        cache = caches["ratelimit"]
        client = cache.client.get_client(write=True)
        ttl = client.ttl(cache.make_key(address.buckets(T0)[-1][0]))
        assert 0 < ttl <= 13 * 75 + 60
        failures_clear(account, now=T0 + 5)
        assert failures_count(account, now=T0 + 5) == 0
    finally:
        failures_clear(account, now=T0)
        failures_clear(address, now=T0)
