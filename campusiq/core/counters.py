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


def counters_add(increments: list[tuple[str, int, int]]) -> list[int]:
    """Adds `delta` to each `(key, delta, ttl_seconds)` and returns the values after, in order. A key's
    lifetime starts again at each increment; an expired key counts from zero."""
    if not increments:
        return []
    cache, redis = _redis()
    if redis is not None:
        try:
            pipeline = redis.pipeline(transaction=False)
            for key, delta, ttl in increments:
                pipeline.incrby(cache.make_key(key), delta)
                pipeline.expire(cache.make_key(key), ttl)
            values = pipeline.execute()[::2]
        except PRIMARY_ERRORS as error:
            _redis_failed(cache, error)
        else:
            _redis_answered(cache)
            return [int(value) for value in values]
    return _table_add(increments)


def counters_get(keys: list[str]) -> dict[str, int]:
    """The current value of each key that has one (expired and unknown keys are left out)."""
    if not keys:
        return {}
    cache, redis = _redis()
    if redis is not None:
        try:
            values = redis.mget([cache.make_key(key) for key in keys])
        except PRIMARY_ERRORS as error:
            _redis_failed(cache, error)
        else:
            return {key: int(value) for key, value in zip(keys, values, strict=True) if value is not None}
    rows = RateCounter.objects.filter(key__in=keys, expires_at__gte=timezone.now()).values_list("key", "value")
    return dict(rows)


def counters_subtract(keys: list[str]) -> None:
    """Takes one back from each key still alive (a place given back); an expired key stays gone."""
    if not keys:
        return
    cache, redis = _redis()
    if redis is not None:
        try:
            pipeline = redis.pipeline(transaction=False)
            for key in keys:
                pipeline.decr(cache.make_key(key))
            pipeline.execute()
        except PRIMARY_ERRORS as error:
            _redis_failed(cache, error)
        else:
            return
    RateCounter.objects.filter(key__in=keys, expires_at__gte=timezone.now()).update(value=F("value") - 1)


def counters_delete(keys: list[str]) -> None:
    """Forgets the keys (a subject's failures cleared)."""
    if not keys:
        return
    cache, redis = _redis()
    if redis is not None:
        try:
            redis.delete(*(cache.make_key(key) for key in keys))
        except PRIMARY_ERRORS as error:
            _redis_failed(cache, error)
        else:
            return
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


def _redis():
    cache = caches[settings.RATELIMIT_USE_CACHE]
    return cache, redis_client(cache)


def _redis_failed(cache, error: BaseException) -> None:
    if not isinstance(cache, FailoverCache):
        raise error  # nowhere else to count: an error, never an uncounted request
    cache.primary_failed(error)


def _redis_answered(cache) -> None:
    if isinstance(cache, FailoverCache):
        cache.primary_answered()  # nothing to do unless Redis is just back
