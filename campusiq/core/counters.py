"""Counters that hold exactly under concurrency, whatever the project runs on: the rate limits
(campusiq.core.ratelimit) and the sign-in failure counters (accounts.throttle) count here.

On Redis (every deployment): INCRBY and EXPIRE in one pipeline, atomic per key. Without Redis
(development, the embedded setup) and while Redis is down (the "ratelimit" cache is a FailoverCache
whose circuit is open), the RateCounter table: one INSERT ... ON CONFLICT DO UPDATE ... RETURNING
for all the keys, a single atomic statement on PostgreSQL and SQLite alike, shared by every process.
Django's cache `add` and `incr` are a read then a write on its database cache: 50 concurrent
check-ins against a limit of 20 let 36 through. Call these outside a transaction that may roll back:
on the table, a rolled-back count is forgotten.
"""

import datetime

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.db.models import F
from django.utils import timezone

from campusiq.core.cache import PRIMARY_ERRORS, FailoverCache, redis_client
from campusiq.core.models import RateCounter

# What _on_redis answers when the counting is the table's to do.
ON_TABLE = object()


def counters_add(increments: list[tuple[str, int, int]]) -> list[int]:
    """Adds `delta` to each `(key, delta, ttl_seconds)` and returns the values after, in order. A key's
    lifetime starts again at each increment; an expired key counts from zero."""
    if not increments:
        return []

    def on_redis(redis, name):
        pipeline = redis.pipeline(transaction=False)
        for key, delta, ttl in increments:
            pipeline.incrby(name(key), delta)
            pipeline.expire(name(key), ttl)
        return [int(value) for value in pipeline.execute()[::2]]

    values = _on_redis(on_redis)
    return _table_add(increments) if values is ON_TABLE else values


def counters_get(keys: list[str]) -> dict[str, int]:
    """The current value of each key that has one (expired and unknown keys are left out)."""
    if not keys:
        return {}

    def on_redis(redis, name):
        values = redis.mget([name(key) for key in keys])
        return {key: int(value) for key, value in zip(keys, values, strict=True) if value is not None}

    values = _on_redis(on_redis)
    if values is ON_TABLE:
        rows = RateCounter.objects.filter(key__in=keys, expires_at__gte=timezone.now()).values_list("key", "value")
        values = dict(rows)
    return values


def counters_subtract(keys: list[str]) -> None:
    """Takes one back from each key still alive (a place given back); an expired key stays gone."""
    if not keys:
        return

    def on_redis(redis, name):
        pipeline = redis.pipeline(transaction=False)
        for key in keys:
            pipeline.decr(name(key))
        pipeline.execute()

    if _on_redis(on_redis) is ON_TABLE:
        RateCounter.objects.filter(key__in=keys, expires_at__gte=timezone.now()).update(value=F("value") - 1)


def counters_delete(keys: list[str]) -> None:
    """Forgets the keys (a subject's failures cleared)."""
    if keys and _on_redis(lambda redis, name: redis.delete(*map(name, keys))) is ON_TABLE:
        RateCounter.objects.filter(key__in=keys).delete()


def counters_purge_expired() -> int:
    """Deletes the table's counters whose windows are over (core.expired_sessions_purge runs it)."""
    deleted, _ = RateCounter.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def _table_add(increments: list[tuple[str, int, int]]) -> list[int]:
    now = timezone.now()
    quote = connection.ops.quote_name
    table, key_column, value_column, expires_column = (
        quote(n) for n in (RateCounter._meta.db_table, "key", "value", "expires_at")
    )
    rows, params = [], []
    for key, delta, ttl in increments:
        rows.append("(%s, %s, %s)")
        expires = now + datetime.timedelta(seconds=ttl)
        params += [key, delta, connection.ops.adapt_datetimefield_value(expires)]
    params.append(connection.ops.adapt_datetimefield_value(now))
    # Our table and columns; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({key_column}, {value_column}, {expires_column}) VALUES {', '.join(rows)} "  # noqa: S608  # nosec B608
        f"ON CONFLICT ({key_column}) DO UPDATE SET {value_column} = CASE WHEN {table}.{expires_column} < %s "
        f"THEN excluded.{value_column} ELSE {table}.{value_column} + excluded.{value_column} END, "
        f"{expires_column} = excluded.{expires_column} RETURNING {key_column}, {value_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values = dict(cursor.fetchall())
    return [int(values[key]) for key, _, _ in increments]


def _on_redis(command):
    """`command(redis, name)` on Redis, `name` giving a key its cache prefix, when the counters live
    there; ON_TABLE when they live in the table: no Redis configured, the circuit open, or Redis failing
    now (which opens the circuit). Without a failover, a Redis error is raised: never an uncounted request."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    redis = redis_client(cache)
    if redis is None:
        return ON_TABLE
    try:
        result = command(redis, cache.make_key)
    except PRIMARY_ERRORS as error:
        if not isinstance(cache, FailoverCache):
            raise
        cache.primary_failed(error)
        return ON_TABLE
    if isinstance(cache, FailoverCache):
        cache.primary_answered()  # nothing to do unless Redis is just back
    return result
