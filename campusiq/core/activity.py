"""Who has been signed in lately: the distinct users seen in the last 15 minutes (campusiq_active_users).

With Redis (every deployment), one sorted set shared by all workers and replicas: user id -> when last
seen. A request costs at most one ZADD per user, worker and minute (each process remembers whom it
recorded lately), never a database write; the scrape trims the set to the window and counts it. So
a user counts from their first request and may drop out up to a minute before their 15 minutes are
over. While Redis is down nobody is recorded. Without Redis (development, tests) the set lives in the
process, which is right for one process (runserver).
"""

import threading
import time

from django.core.cache import caches

from campusiq.core.cache import PRIMARY_ERRORS, FailoverCache, redis_client

WINDOW_SECONDS = 15 * 60
# How long a process goes without writing a user again: the count's only imprecision.
RECORD_INTERVAL_SECONDS = 60
KEY = "metrics:active-users"

_recorded: dict[int, float] = {}  # user id -> when this process last wrote them (time.time())
_local: dict[int, float] = {}  # the set itself, without Redis
_lock = threading.Lock()


def user_seen(user_id: int, *, now: float | None = None) -> None:
    """Records that `user_id` made a request now; cheap enough for every request, and never raises."""
    now = time.time() if now is None else now
    with _lock:
        if now - _recorded.get(user_id, float("-inf")) < RECORD_INTERVAL_SECONDS:
            return
        _recorded[user_id] = now
        if len(_recorded) > 10_000:  # forget users nobody would skip any more
            for stale in [uid for uid, at in _recorded.items() if now - at >= RECORD_INTERVAL_SECONDS]:
                del _recorded[stale]
    cache = caches["default"]
    redis = redis_client(cache)
    if redis is None:
        if not isinstance(cache, FailoverCache):
            with _lock:
                _local[user_id] = now
        return
    try:
        redis.zadd(cache.make_key(KEY), {str(user_id): now})
    except PRIMARY_ERRORS as error:
        if isinstance(cache, FailoverCache):
            cache.primary_failed(error)  # the next requests skip Redis for a while instead of waiting on it
        with _lock:
            _recorded.pop(user_id, None)


def active_users_count(*, now: float | None = None) -> int | None:
    """Distinct users seen in the last WINDOW_SECONDS; None when Redis cannot be asked."""
    now = time.time() if now is None else now
    since = now - WINDOW_SECONDS
    cache = caches["default"]
    redis = redis_client(cache)
    if redis is None:
        if isinstance(cache, FailoverCache):
            return None
        with _lock:
            for stale in [uid for uid, at in _local.items() if at < since]:
                del _local[stale]
            return len(_local)
    key = cache.make_key(KEY)
    try:
        pipeline = redis.pipeline(transaction=False)
        pipeline.zremrangebyscore(key, "-inf", f"({since}")
        pipeline.zcard(key)
        pipeline.expire(key, WINDOW_SECONDS * 2)  # nobody seen for long: the set goes away by itself
        _, count, _ = pipeline.execute()
    except PRIMARY_ERRORS as error:
        if isinstance(cache, FailoverCache):
            cache.primary_failed(error)
        return None
    return int(count)


def forget_all() -> None:
    """This process's memory of whom it recorded, and the local set (tests)."""
    with _lock:
        _recorded.clear()
        _local.clear()
