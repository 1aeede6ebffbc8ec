"""The metrics CampusIQ adds to django-prometheus's: active users (one Redis sorted set for every
worker), this database's connections, and the collectors the apps register."""

import re
import time

import pytest
import redis
from django.test import override_settings

from campusiq.core import activity, metrics
from campusiq.core.cache import failover_caches
from tests.conftest import redis_url
from tests.core.test_cache import fresh_circuits  # noqa: F401  (fixture)
from tests.factories import UserFactory
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_activity():
    activity.forget_all()
    yield
    activity.forget_all()


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def sample(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_signed_in_users_are_counted_once_each_within_the_window(client):
    first, second = UserFactory(), UserFactory()
    for person in (first, second, first):
        client.force_login(person)
        assert client.get("/").status_code == 200
    client.logout()
    assert client.get("/").status_code == 200  # anonymous: nobody
    assert sample(scrape(client), "campusiq_active_users") == 2
    # A quarter of an hour later nobody is left.
    assert activity.active_users_count(now=time.time() + activity.WINDOW_SECONDS + 1) == 0


def test_a_failing_collector_is_left_out_and_the_others_still_answer(client, monkeypatch, log_output):
    def broken():
        raise RuntimeError("no table")
        yield  # pragma: no cover

    monkeypatch.setattr(metrics, "_collectors", {"broken": broken, **metrics._collectors})
    text = scrape(client)
    assert "campusiq_backup_last_success_timestamp_seconds" in text
    assert "campusiq_active_model_threshold" in text  # predictions' collector, registered in ready()
    assert '"metrics_collector_failed"' in log_output.getvalue() and "no table" in log_output.getvalue()


@pytest.mark.postgres
def test_database_connections_are_read_from_postgresql(client):
    text = scrape(client)
    assert sample(text, "campusiq_db_connections", '{state="active"}') >= 1  # the scrape's own query
    assert sample(text, "campusiq_db_connections", '{state="idle in transaction"}') is not None


@pytest.fixture
def redis_caches():
    url = redis_url().rsplit("/", 1)[0] + "/8"
    client = redis.Redis.from_url(url)
    client.flushdb()
    with override_settings(CACHES=failover_caches(url)):
        yield client
    client.flushdb()


@pytest.mark.redis
def test_workers_share_one_set_in_redis_and_each_writes_a_user_once_a_minute(redis_caches):
    now = time.time()
    activity.user_seen(1, now=now)
    activity.forget_all()  # another worker: its own memory, the same set
    activity.user_seen(2, now=now)
    activity.user_seen(1, now=now + 1)
    (key,) = redis_caches.keys("*active-users")
    assert activity.active_users_count(now=now + 2) == 2
    activity.user_seen(1, now=now + 30)  # written a moment ago by this worker: skipped
    assert redis_caches.zscore(key, "1") == now + 1
    activity.user_seen(1, now=now + 62)
    assert redis_caches.zscore(key, "1") == now + 62
    # User 2 was last seen more than 15 minutes before: trimmed from the set at the scrape.
    assert activity.active_users_count(now=now + activity.WINDOW_SECONDS + 30) == 1
    assert redis_caches.zcard(key) == 1 and redis_caches.ttl(key) > 0


def test_a_dead_redis_costs_a_request_one_attempt_and_the_count_is_unknown(fresh_circuits):  # noqa: F811
    with override_settings(CACHES=failover_caches(f"redis://127.0.0.1:{free_port()}/0")):
        activity.user_seen(1)  # refused: the circuit opens, nothing raises
        started = time.perf_counter()
        activity.user_seen(2)
        assert time.perf_counter() - started < 0.05  # no second attempt while the circuit is open
        assert activity.active_users_count() is None
