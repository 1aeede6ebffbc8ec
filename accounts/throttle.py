"""Failure counters for sign-in, on the shared "ratelimit" cache (Redis in production).

django-ratelimit and campusiq.core.ratelimit count every request in fixed windows. Sign-in needs
something else: count *failures* only, refuse before the password is looked at, say how long to
wait, and hold a limit over any rolling window ("at most 100 failures in any hour", not "per
clock hour", which lets 200 through around the turn of the hour).

Each limit is a sliding window made of buckets (a twelfth of the period each); the count is the sum
of the buckets that cover the whole period, so the window is never shorter than the period. An
attempt *reserves* its place first (one increment of the current bucket of every counter, read
back with the other buckets in one round trip): concurrent guesses cannot all slip under the limit
together. A refused or successful attempt gives its place back; a failed one keeps it.
"""

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import caches
from django.utils.crypto import salted_hmac
from redis.exceptions import RedisError

from campusiq.core.ratelimit import RateLimit

BUCKETS_PER_PERIOD = 12
# Keys outlive their last use a little, so the oldest bucket is still there when it is summed.
EXPIRY_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class FailureLimit:
    scope: str
    limit: int
    period: int  # seconds

    @classmethod
    def parse(cls, scope: str, rate: str) -> "FailureLimit":
        """'5/15m' -> 5 failures in any 15 minutes (django-ratelimit's notation)."""
        limit, period = RateLimit(scope, "", rate).limit_and_period()
        return cls(scope=scope, limit=limit, period=period)

    @property
    def bucket_seconds(self) -> int:
        return max(1, math.ceil(self.period / BUCKETS_PER_PERIOD))

    @property
    def span(self) -> int:
        """Buckets summed: enough that they always cover the whole period back from now."""
        return math.ceil(self.period / self.bucket_seconds) + 1


@dataclass(frozen=True)
class Counter:
    """One limit applied to one subject (an account, an address, a browser)."""

    limit: FailureLimit
    subject: str
    enforced: bool = True  # counted but never refusing: see accounts/signin.py, known browsers

    def buckets(self, now: int) -> list[tuple[str, int]]:
        """(cache key, bucket index) of the buckets counted at `now`, oldest first."""
        size = self.limit.bucket_seconds
        current = now // size
        digest = hashlib.sha256(self.subject.encode()).hexdigest()[:32]
        return [
            (f"signin:{self.limit.scope}:{digest}:{size}:{index}", index)
            for index in range(current - self.limit.span + 1, current + 1)
        ]

    def ttl(self) -> int:
        return self.limit.span * self.limit.bucket_seconds + EXPIRY_MARGIN_SECONDS


@dataclass(frozen=True)
class Refusal:
    scope: str
    retry_after: int  # seconds until one more attempt would be allowed


@dataclass
class Reservation:
    """The increments an attempt made; given back unless the attempt failed."""

    keys: list[str] = field(default_factory=list)
    ttls: list[int] = field(default_factory=list)
    refusal: Refusal | None = None


def subject_digest(*parts: str) -> str:
    """A keyed hash: cache keys never show an email address, and cannot be precomputed by outsiders."""
    return salted_hmac("campusiq.accounts.throttle", "\x00".join(parts)).hexdigest()


def _cache():
    return caches[settings.RATELIMIT_USE_CACHE]


def _redis(cache):
    """The raw Redis client behind the cache, or None (the database cache; Redis down)."""
    redis_client = getattr(cache, "redis_client", None)  # campusiq.core.cache.FailoverCache
    if callable(redis_client):
        return redis_client()
    get_client = getattr(getattr(cache, "client", None), "get_client", None)  # django-redis
    return get_client(write=True) if get_client is not None else None


def _through_redis(cache, redis, call) -> bool:
    """Runs `call(redis)`; False if Redis failed and the cache can answer from its fallback instead."""
    try:
        call(redis)
    except (RedisError, OSError) as error:
        if not hasattr(cache, "primary_failed"):
            raise  # nowhere else to count: an error, never an uncounted attempt
        cache.primary_failed(error)
        return False
    return True


def failures_reserve(counters: list[Counter], *, now: int | None = None) -> Reservation:
    """Counts this attempt on every counter; if an enforced one is now over its limit, gives the
    place back at once and returns the refusal with the longest wait."""
    if not counters or not getattr(settings, "RATELIMIT_ENABLE", True):
        return Reservation()
    now = int(time.time()) if now is None else now
    cache = _cache()
    layouts = [counter.buckets(now) for counter in counters]
    current_keys = [layout[-1][0] for layout in layouts]
    older_keys = [key for layout in layouts for key, _ in layout[:-1]]
    counts: dict[str, int] = {}

    def increment(redis) -> None:
        # One round trip: the increments, and the older buckets (plain integers, written by INCR).
        pipeline = redis.pipeline(transaction=False)
        for key, counter in zip(current_keys, counters, strict=True):
            pipeline.incr(cache.make_key(key))
            pipeline.expire(cache.make_key(key), counter.ttl())
        pipeline.mget([cache.make_key(key) for key in older_keys])
        replies = pipeline.execute()
        counts.update(zip(current_keys, replies[: 2 * len(counters) : 2], strict=True))
        counts.update((key, int(value)) for key, value in zip(older_keys, replies[-1], strict=False) if value)

    redis = _redis(cache)
    if redis is None or not _through_redis(cache, redis, increment):
        counts.clear()
        for key, counter in zip(current_keys, counters, strict=True):
            cache.add(key, 0, counter.ttl())
            try:
                counts[key] = cache.incr(key)
            except ValueError:  # culled or expired between the two calls
                cache.set(key, 1, counter.ttl())
                counts[key] = 1
            # Django's incr() re-sets the value with the cache's default timeout (5 minutes): a
            # day-long window would forget its failures. Give the key its own lifetime back.
            cache.touch(key, counter.ttl())
        counts.update(cache.get_many(older_keys))
    reservation = Reservation(keys=current_keys, ttls=[counter.ttl() for counter in counters])
    refusals = []
    for counter, layout in zip(counters, layouts, strict=True):
        values = [int(counts.get(key) or 0) for key, _ in layout]
        if counter.enforced and sum(values) > counter.limit.limit:
            values[-1] -= 1  # what the counter holds without this attempt
            refusals.append(Refusal(counter.limit.scope, _retry_after(counter, layout, values, now)))
    if refusals:
        failures_release(reservation)
        reservation = Reservation(refusal=max(refusals, key=lambda refusal: refusal.retry_after))
    return reservation


def _retry_after(counter: Counter, layout: list[tuple[str, int]], values: list[int], now: int) -> int:
    """Seconds until enough old buckets have left the window for one more attempt to fit."""
    total = sum(values)
    size, span = counter.limit.bucket_seconds, counter.limit.span
    for (_key, index), value in zip(layout, values, strict=True):
        total -= value
        if total < counter.limit.limit:
            return max(1, (index + span) * size - now)
    return counter.limit.period  # not reached: the newest bucket leaves last


def failures_release(reservation: Reservation) -> None:
    """Gives back the places an attempt reserved (it was refused, or it was not a failure)."""
    if not reservation.keys:
        return
    cache = _cache()

    def decrement(redis) -> None:
        pipeline = redis.pipeline(transaction=False)
        for key in reservation.keys:
            pipeline.decr(cache.make_key(key))
        pipeline.execute()

    redis = _redis(cache)
    if redis is None or not _through_redis(cache, redis, decrement):
        for key, ttl in zip(reservation.keys, reservation.ttls, strict=True):
            with contextlib.suppress(ValueError):  # expired: nothing to give back
                cache.decr(key)
                cache.touch(key, ttl)  # as in failures_reserve: decr() would shorten its life
    reservation.keys, reservation.ttls = [], []


def failures_clear(counter: Counter, *, now: int | None = None) -> None:
    """Forgets a subject's failures (a successful sign-in clears its account-and-address counter)."""
    now = int(time.time()) if now is None else now
    _cache().delete_many([key for key, _ in counter.buckets(now)])


def failures_count(counter: Counter, *, now: int | None = None) -> int:
    """The failures a counter holds now (for tests and operators; attempts use failures_reserve)."""
    now = int(time.time()) if now is None else now
    values = _cache().get_many([key for key, _ in counter.buckets(now)])
    return sum(int(value or 0) for value in values.values())
