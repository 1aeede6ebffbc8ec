"""Several rate limits counted in one go: one round trip to Redis instead of two per limit.

A check-in counts a hit per person and per client address; through django-ratelimit that is an
`add` and an `incr` per limit, four round trips on the hottest request of the site. On Redis the
counters here are fixed windows, incremented in one pipeline. On any other cache (the database
cache of the embedded setup and the tests) each limit goes through django-ratelimit as before.

While Redis is down the limits still hold: the "ratelimit" cache is a FailoverCache
(campusiq/core/cache.py), so the same limits are counted through django-ratelimit in the database,
shared by every process. They are never skipped: a Redis outage must not open sign-in to brute force.
"""

import contextlib
import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

from campusiq.core.cache import PRIMARY_ERRORS, FailoverCache, redis_client

# Keys outlive their window a little so a hit at its very end is still counted.
EXPIRY_MARGIN_SECONDS = 5
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")


@dataclass(frozen=True)
class RateLimit:
    group: str
    key: str
    rate: str  # django-ratelimit's notation: "20/m", "100/5m"

    def limit_and_period(self) -> tuple[int, int]:
        match = RATE.match(self.rate)
        if match is None:
            raise ImproperlyConfigured(f"Rate {self.rate!r} of {self.group} is not like '20/m' or '100/5m'.")
        count, multiplier, unit = match.groups()
        return int(count), int(multiplier or 1) * PERIOD_SECONDS[unit]


def rate_limits_hit(request: HttpRequest, limits: list[RateLimit]) -> bool:
    """Counts one hit on every limit; True if any of them is now over its rate."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return False
    cache = caches[settings.RATELIMIT_USE_CACHE]
    redis = redis_client(cache)
    if redis is not None:
        try:
            over = _redis_hits(cache, redis, limits)
            if isinstance(cache, FailoverCache):
                cache.primary_answered()  # nothing to do unless Redis is just back
            return over
        except PRIMARY_ERRORS as error:
            if not isinstance(cache, FailoverCache):
                raise  # nowhere else to count: an error, never an uncounted request
            cache.primary_failed(error)
    # Through the cache: the database cache, or a FailoverCache's fallback while Redis is down.
    with cache.pinned() if isinstance(cache, FailoverCache) else contextlib.nullcontext():
        over = [
            is_ratelimited(request, group=lim.group, key=_constant(lim.key), rate=lim.rate, increment=True)
            for lim in limits
        ]
    return any(over)


def _redis_hits(cache, redis, limits: list[RateLimit]) -> bool:
    now = int(time.time())
    pipeline = redis.pipeline(transaction=False)
    bounds = []
    for lim in limits:
        count, period = lim.limit_and_period()
        digest = hashlib.sha256(lim.key.encode()).hexdigest()[:32]
        key = cache.make_key(f"rl:{lim.group}:{digest}:{now - now % period}")
        pipeline.incr(key)
        pipeline.expire(key, period + EXPIRY_MARGIN_SECONDS)
        bounds.append(count)
    replies = pipeline.execute()
    return any(hits > bound for hits, bound in zip(replies[::2], bounds, strict=True))


def client_network(request: HttpRequest) -> str:
    """The client's address as a rate-limit key; IPv6 by its /64, which one device can roam within."""
    address = request.META.get("REMOTE_ADDR") or ""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    except ValueError:
        return address


def _constant(value: str):
    return lambda group, request: value
