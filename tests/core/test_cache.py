"""The caches in front of Redis (campusiq/core/cache.py): Redis down, reads miss, writes are dropped,
rate limits and sign-in throttling are counted in the database with the same limits; the outage is
logged once; Redis back, it is used again and the deletes it missed are replayed."""

import json
import threading

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from django.test import override_settings

from campusiq.core import cache as failover
from campusiq.core.cache import RATELIMIT_FALLBACK_TABLE, FailoverCache, failover_caches
from campusiq.core.models import RateCounter
from campusiq.core.ratelimit import RateLimit, rate_limits_hit
from tests.support.processes import free_port

RETRY_AFTER = 5


class FlakyCache(LocMemCache):
    """A primary that can be switched off: while `down`, every call raises what redis-py raises."""

    state = {"down": False, "calls": 0}


def _flaky(name):
    original = getattr(LocMemCache, name)

    def method(self, *args, **kwargs):
        FlakyCache.state["calls"] += 1
        if FlakyCache.state["down"]:
            raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
        return original(self, *args, **kwargs)

    return method


for _name in ("add", "get", "set", "touch", "delete", "get_many", "set_many", "delete_many", "has_key", "incr"):
    setattr(FlakyCache, _name, _flaky(_name))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_circuits(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(failover, "monotonic", clock)
    monkeypatch.setattr(failover, "_circuits", {})
    FlakyCache.state.update(down=False, calls=0)
    yield clock
    FlakyCache.state.update(down=False, calls=0)


def flaky_caches(ratelimit_primary: dict | None = None) -> dict:
    primary = {"BACKEND": "tests.core.test_cache.FlakyCache", "LOCATION": "flaky-redis"}
    configured = failover_caches("redis://unused:6379/0", retry_after_seconds=RETRY_AFTER)
    configured["default"]["OPTIONS"]["PRIMARY"] = primary
    configured["ratelimit"]["OPTIONS"]["PRIMARY"] = ratelimit_primary or primary
    return configured


def events(log_output, name: str) -> list[dict]:
    return [line for line in map(json.loads, log_output.getvalue().splitlines()) if line.get("event") == name]


def test_redis_down_reads_miss_writes_are_dropped_and_it_is_said_once(fresh_circuits, log_output):
    with override_settings(CACHES=flaky_caches()):
        cache = caches["default"]
        cache.set("campusiq:api-token:abc", "token", 60)
        FlakyCache.state["down"] = True
        assert cache.get("campusiq:api-token:abc") is None  # a miss: the caller reads the database
        cache.set("campusiq:api-token:abc", "token", 60)  # dropped, no error
        assert cache.get_many(["a", "b"]) == {}
        calls_when_opened = FlakyCache.state["calls"]
        for _ in range(20):
            cache.get("campusiq:api-token:abc")
        # The circuit is open: nobody waits on Redis again until the interval has passed.
        assert FlakyCache.state["calls"] == calls_when_opened == 2
        fresh_circuits.now += RETRY_AFTER
        assert cache.get("campusiq:api-token:abc") is None  # one try, still down: not "recovered"
        assert FlakyCache.state["calls"] == 3
    assert not events(log_output, "cache.recovered")
    (said,) = events(log_output, "cache.unavailable")
    assert said["cache"] == "default" and said["fallback"] == "DummyCache" and "ConnectionError" in said["error"]


def test_redis_back_is_used_again_and_the_deletes_it_missed_are_replayed(fresh_circuits, log_output):
    with override_settings(CACHES=flaky_caches()):
        cache = caches["default"]
        cache.set("campusiq:api-token:revoked", "token", 60)
        FlakyCache.state["down"] = True
        cache.delete("campusiq:api-token:revoked")  # a revocation while Redis is unreachable
        cache.delete_many(["campusiq:class-session:7"])
        FlakyCache.state["down"] = False
        fresh_circuits.now += RETRY_AFTER - 1
        assert cache.get("campusiq:api-token:revoked") is None  # still on the fallback: not asked yet
        fresh_circuits.now += 1
        # Back: the stale entry was deleted on the first contact, before anything could read it.
        assert cache.get("campusiq:api-token:revoked") is None
        assert cache.primary.get("campusiq:api-token:revoked") is None
        cache.set("k", "v", 60)
        assert cache.get("k") == "v"
    (recovered,) = events(log_output, "cache.recovered")
    assert recovered["replayed"] == 2 and recovered["outage_seconds"] == RETRY_AFTER


@pytest.mark.django_db
def test_rate_limits_are_counted_in_the_database_while_redis_is_refusing_connections(fresh_circuits):
    """The production arrangement with a Redis nobody listens on: the pipeline fails, the limits hold."""
    dead_redis = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    limits = [RateLimit("check-in-person", "user:7", "2/m"), RateLimit("check-in-ip", "193.136.10.1", "100/m")]
    with override_settings(CACHES=flaky_caches(ratelimit_primary=dead_redis)):
        assert [bool(rate_limits_hit(limits)) for _ in range(3)] == [False, False, True]
    assert RateCounter.objects.filter(key__startswith="rl:").count() == 2  # one counter per limit and window


@pytest.mark.django_db
def test_the_outages_expired_counters_are_purged_when_redis_is_back(fresh_circuits):
    with override_settings(CACHES=flaky_caches()):
        cache = caches["ratelimit"]
        FlakyCache.state["down"] = True
        cache.add("rl:window-over", 3, timeout=-1)  # already expired
        cache.add("rl:window-open", 3, timeout=60)
        FlakyCache.state["down"] = False
        fresh_circuits.now += RETRY_AFTER
        cache.get("anything")  # Redis answers again
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT cache_key FROM {RATELIMIT_FALLBACK_TABLE}")  # noqa: S608
            keys = [row[0] for row in cursor.fetchall()]
    assert [key for key in keys if "rl:window" in key] == [cache.fallback.make_key("rl:window-open")]


@pytest.mark.django_db
def test_guessing_a_password_is_still_throttled_while_redis_is_down(client, user, fresh_circuits):
    user.set_password("the-right-password-1")
    user.save()
    dead_redis = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
    with override_settings(CACHES=flaky_caches(ratelimit_primary=dead_redis)):
        FlakyCache.state["down"] = True
        statuses = [
            client.post("/accounts/login/", {"username": user.email, "password": f"guess-{n}"}).status_code
            for n in range(12)
        ]
    # The loosest limit sign-in has had is 10 a minute: the 11th guess at the latest is refused, and
    # every one after it.
    assert 429 in statuses[:11], statuses
    assert set(statuses[statuses.index(429) :]) == {429}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_counters_count_every_concurrent_increment():
    """Django's database cache reads then writes: two requests at once would count one. Ours locks the row."""
    config = failover_caches("redis://unused:6379/0")["ratelimit"]["OPTIONS"]["FALLBACK"]
    counters = failover.LockingDatabaseCache(config["LOCATION"], config)
    counters.add("rl:concurrent", 0, 60)
    errors = []

    def count():
        try:
            for _ in range(20):
                counters.incr("rl:concurrent")
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert counters.get("rl:concurrent") == 160


def test_failover_caches_name_their_fallbacks():
    configured = failover_caches("redis://redis:6379/0", retry_after_seconds=7)
    default, ratelimit = configured["default"], configured["ratelimit"]
    assert default["BACKEND"] == ratelimit["BACKEND"] == "campusiq.core.cache.FailoverCache"
    assert default["OPTIONS"]["PRIMARY"]["BACKEND"] == "django_prometheus.cache.backends.redis.RedisCache"
    assert default["OPTIONS"]["FALLBACK"]["BACKEND"].endswith("DummyCache")  # never a per-process cache
    assert ratelimit["OPTIONS"]["FALLBACK"]["LOCATION"] == RATELIMIT_FALLBACK_TABLE
    assert ratelimit["OPTIONS"]["RETRY_AFTER_SECONDS"] == 7
    assert isinstance(FailoverCache("", default), FailoverCache)
