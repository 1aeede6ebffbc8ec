"""Rate limits in fixed windows, several counted in one go (one round trip), exact under concurrency.

A check-in counts a hit per person and per client address. Each limit is a counter per window in
campusiq.core.counters: Redis in production, the RateCounter table without Redis and while Redis is
down, so the limits hold (and hold exactly: one atomic increment per key) on every store the project
runs on; a Redis outage must not open sign-in to brute force. `rate_limits_enforce` raises
RateLimitExceeded, which carries how long to wait: every 429 says so in Retry-After.
"""

import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_ratelimit.exceptions import Ratelimited

from campusiq.core.counters import counters_add

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


class RateLimitExceeded(Ratelimited):
    """A limit is spent; `retry_after` seconds until its window is over."""

    def __init__(self, retry_after: int):
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


def window_clock() -> float:
    """The time whose window a hit counts in (the test suite holds it still for the length of a test,
    so a budget spent over a few requests is never refilled by a minute ending in between)."""
    return time.time()


def rate_limits_hit(limits: list[RateLimit], *, now: float | None = None) -> int:
    """Counts one hit on every limit; the seconds until every spent one has a new window (0: none spent)."""
    if not limits or not getattr(settings, "RATELIMIT_ENABLE", True):
        return 0
    now = int(window_clock() if now is None else now)
    increments, bounds = [], []
    for lim in limits:
        count, period = lim.limit_and_period()
        digest = hashlib.sha256(lim.key.encode()).hexdigest()[:32]
        window_start = now - now % period
        increments.append((f"rl:{lim.group}:{digest}:{window_start}", 1, period + EXPIRY_MARGIN_SECONDS))
        bounds.append((count, window_start + period))
    hits = counters_add(increments)
    waits = [ends - now for value, (count, ends) in zip(hits, bounds, strict=True) if value > count]
    return max(waits, default=0)


def rate_limits_enforce(limits: list[RateLimit]) -> None:
    """Counts one hit on every limit; raises RateLimitExceeded (a 429 with Retry-After) if one is spent."""
    retry_after = rate_limits_hit(limits)
    if retry_after:
        raise RateLimitExceeded(retry_after)


def client_network(request: HttpRequest) -> str:
    """The client's address as a rate-limit key; IPv6 by its /64, which one device can roam within."""
    address = request.META.get("REMOTE_ADDR") or ""
    if ":" not in address:
        return address
    try:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    except ValueError:
        return address
