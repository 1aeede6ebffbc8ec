"""Failure counters for sign-in, in campusiq.core.counters (Redis in production; exact everywhere).

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

import hashlib
import math
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.crypto import salted_hmac

from campusiq.core.counters import counters_add, counters_delete, counters_get, counters_subtract
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
    refusal: Refusal | None = None


def subject_digest(*parts: str) -> str:
    """A keyed hash: cache keys never show an email address, and cannot be precomputed by outsiders."""
    return salted_hmac("campusiq.accounts.throttle", "\x00".join(parts)).hexdigest()


def failures_reserve(counters: list[Counter], *, now: int | None = None) -> Reservation:
    """Counts this attempt on every counter; if an enforced one is now over its limit, gives the
    place back at once and returns the refusal with the longest wait."""
    if not counters or not getattr(settings, "RATELIMIT_ENABLE", True):
        return Reservation()
    now = int(time.time()) if now is None else now
    layouts = [counter.buckets(now) for counter in counters]
    current_keys = [layout[-1][0] for layout in layouts]
    # The increments are atomic (campusiq.core.counters): concurrent guesses each see the others'.
    counts = dict(
        zip(
            current_keys,
            counters_add([(k, 1, c.ttl()) for k, c in zip(current_keys, counters, strict=True)]),
            strict=True,
        )
    )
    counts.update(counters_get([key for layout in layouts for key, _ in layout[:-1]]))
    reservation = Reservation(keys=current_keys)
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
    counters_subtract(reservation.keys)


def failures_clear(counter: Counter, *, now: int | None = None) -> None:
    """Forgets a subject's failures (a successful sign-in clears its account-and-address counter)."""
    now = int(time.time()) if now is None else now
    counters_delete([key for key, _ in counter.buckets(now)])


def failures_count(counter: Counter, *, now: int | None = None) -> int:
    """The failures a counter holds now (for tests and operators; attempts use failures_reserve)."""
    now = int(time.time()) if now is None else now
    return sum(counters_get([key for key, _ in counter.buckets(now)]).values())
