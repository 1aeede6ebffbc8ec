import datetime

import pytest
import redis as redis_client
import time_machine
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings

from campusiq.core.models import RateCounter
from campusiq.core.ratelimit import RateLimit, client_network, rate_limits_hit
from tests.conftest import redis_url

NOW = datetime.datetime(2026, 10, 5, 9, 0, 10, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def _rate_windows_hold_still():
    """Not held still here (tests/conftest.py): these tests move the clock themselves, across windows."""


@pytest.fixture
def redis_ratelimit_cache():
    """The production arrangement: rate limits on Redis (a database of its own, emptied first)."""
    url = redis_url().rsplit("/", 1)[0] + "/11"
    redis_client.Redis.from_url(url).flushdb()
    cache = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                                   "ratelimit": cache}):  # fmt: skip
        yield caches["ratelimit"]
    redis_client.Redis.from_url(url).flushdb()


def _hits(limits, times):
    return [bool(rate_limits_hit(limits)) for _ in range(times)]


def _counting_behaviour():
    person = RateLimit("check-in-person", "user:7", "2/m")
    address = RateLimit("check-in-ip", "193.136.10.1", "4/m")
    with time_machine.travel(NOW, tick=False):
        # The person's third hit in the minute is over; the address (4/m) is not yet.
        # The refusal says how long to wait: the seconds to the end of the minute's window.
        assert [rate_limits_hit([person, address]) for _ in range(3)] == [0, 0, 50]
        # Another person behind the same address: their own count is fresh, the address reaches 4 then 5.
        other = RateLimit("check-in-person", "user:8", "2/m")
        assert _hits([other, address], 2) == [False, True]
    with time_machine.travel(NOW + datetime.timedelta(minutes=1), tick=False):
        assert rate_limits_hit([person, address]) == 0  # a new window


@pytest.mark.django_db
def test_limits_count_per_key_and_window_in_the_counter_table():
    _counting_behaviour()
    assert RateCounter.objects.filter(key__startswith="rl:check-in-person:").count() == 3  # 2 people, 2 windows


@pytest.mark.redis
@pytest.mark.django_db
def test_limits_count_per_key_and_window_in_one_redis_pipeline(redis_ratelimit_cache, monkeypatch):
    round_trips = []
    real_pipeline = redis_client.client.Pipeline.execute
    monkeypatch.setattr(
        redis_client.client.Pipeline, "execute", lambda self, *a, **k: round_trips.append(1) or real_pipeline(self)
    )
    _counting_behaviour()
    assert not RateCounter.objects.exists()
    assert len(round_trips) == 6  # one per call, however many limits it counts
    raw = redis_ratelimit_cache.client.get_client(write=True)
    keys = raw.keys("*rl:check-in-person*")
    assert keys and all(0 < raw.ttl(key) <= 65 for key in keys)  # windows expire by themselves


@pytest.mark.django_db
def test_rate_limits_can_be_switched_off():
    limit = RateLimit("g", "k", "1/m")
    with override_settings(RATELIMIT_ENABLE=False):
        assert _hits([limit], 3) == [False, False, False]


@pytest.mark.parametrize(("rate", "expected"), [("20/m", (20, 60)), ("100/5m", (100, 300)), ("3/h", (3, 3600))])
def test_rates_read_like_django_ratelimit(rate, expected):
    assert RateLimit("g", "k", rate).limit_and_period() == expected


def test_a_malformed_rate_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="'20 per minute' of g"):
        RateLimit("g", "k", "20 per minute").limit_and_period()


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("193.136.10.1", "193.136.10.1"),
        ("2001:690:2280:8a0:1c2d:3e4f:5a6b:7c8d", "2001:690:2280:8a0::"),
        ("not-an-address:", "not-an-address:"),
    ],
)
def test_ipv6_clients_are_limited_by_their_64_network(address, key):
    assert client_network(RequestFactory().get("/", REMOTE_ADDR=address)) == key
