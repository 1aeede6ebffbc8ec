"""Caches that survive a Redis outage (docs/OPERATIONS.md, "Redis or PostgreSQL down").

`FailoverCache` sends everything to its primary (Redis). When Redis cannot be reached it logs once,
opens a circuit for `RETRY_AFTER_SECONDS` and answers from its fallback meanwhile, so a request never
waits on a dead Redis more than once per worker and per interval; the first operation after the
interval tries Redis again and, if it answers, closes the circuit. The circuit is per process.

- The "default" cache (API tokens, class sessions) falls back to no cache at all: every read goes to
  the database, which is slower but always right. A process-local cache would be wrong: a revoked
  token dropped in one worker would stay cached in the others. Deletes that could not reach Redis
  (token revocations, session changes) are replayed when it answers again, so a Redis that was only
  unreachable, not emptied, does not serve stale entries afterwards.
- The "ratelimit" cache falls back to a table in the database, shared by every process and replica:
  the limits stay the same, never open (`LockingDatabaseCache` counts atomically on PostgreSQL).
"""

import contextlib
import secrets
import threading
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

import redis
import structlog
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

log = structlog.get_logger(__name__)

RATELIMIT_FALLBACK_TABLE = "campusiq_ratelimit_cache"
# What Redis raises when it is down, unreachable, too slow, or refusing writes (noeviction, memory full).
PRIMARY_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
try:  # django-redis wraps them when a cache method is called through its client directly
    from django_redis.exceptions import ConnectionInterrupted

    PRIMARY_ERRORS = (*PRIMARY_ERRORS, ConnectionInterrupted)
except ImportError:  # pragma: no cover - django-redis is a dependency of production
    pass
# Deletes remembered while Redis is down, at most: beyond that, entries expire on their own (a minute).
PENDING_DELETES_MAX = 10_000


def failover_caches(redis_url: str, *, retry_after_seconds: int = 5, timeout_seconds: float = 1.0) -> dict:
    """The CACHES setting for a deployment with Redis: both aliases on Redis, each with its fallback."""
    redis_cache = {
        # django-redis, counting gets, hits and misses (django_cache_*{backend="redis"}).
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": redis_url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": timeout_seconds, "SOCKET_TIMEOUT": timeout_seconds},
    }
    return {
        "default": {
            "BACKEND": "campusiq.core.cache.FailoverCache",
            "OPTIONS": {
                "NAME": "default",
                "PRIMARY": redis_cache,
                "FALLBACK": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
                "RETRY_AFTER_SECONDS": retry_after_seconds,
            },
        },
        "ratelimit": {
            "BACKEND": "campusiq.core.cache.FailoverCache",
            "OPTIONS": {
                "NAME": "ratelimit",
                "PRIMARY": redis_cache,
                "FALLBACK": {
                    "BACKEND": "campusiq.core.cache.LockingDatabaseCache",
                    "LOCATION": RATELIMIT_FALLBACK_TABLE,
                    # Culling would delete live counters and reset people's limits.
                    "OPTIONS": {"MAX_ENTRIES": 1_000_000},
                },
                "RETRY_AFTER_SECONDS": retry_after_seconds,
            },
        },
    }


@dataclass
class Circuit:
    """The primary's state in this process, shared by every thread's instance of one cache alias."""

    name: str
    down_since: float | None = None
    retry_at: float = 0.0
    errors_while_down: int = 0
    pending_deletes: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_circuits: dict[str, Circuit] = {}
_circuits_lock = threading.Lock()


def circuit_for(name: str) -> Circuit:
    with _circuits_lock:
        return _circuits.setdefault(name, Circuit(name))


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class FailoverCache(BaseCache):
    """The primary cache while it answers, the fallback while it does not (see the module's docstring)."""

    def __init__(self, location: str, params: dict[str, Any]):
        super().__init__(params)
        options = params.get("OPTIONS", {})
        self.name = options.get("NAME", "cache")
        self.primary = _build(options["PRIMARY"])
        self.fallback = _build(options["FALLBACK"])
        self.retry_after = float(options.get("RETRY_AFTER_SECONDS", 5))
        self.circuit = circuit_for(self.name)

    # --- the circuit ---------------------------------------------------------------------------

    def primary_available(self) -> bool:
        """False while the circuit is open; once the interval has passed, the next caller tries."""
        circuit = self.circuit
        return circuit.down_since is None or monotonic() >= circuit.retry_at

    def primary_failed(self, error: BaseException) -> None:
        circuit = self.circuit
        with circuit.lock:
            now = monotonic()
            circuit.retry_at = now + self.retry_after
            circuit.errors_while_down += 1
            if circuit.down_since is not None:
                return
            circuit.down_since = now
        log.warning("cache.unavailable", cache=self.name, error=describe(error), fallback=_kind(self.fallback))

    def primary_answered(self, replayed: set | None = None) -> None:
        """Closes the circuit: Redis answered an operation. Replays the deletes it missed first, unless
        the caller did (`replayed`); raises PRIMARY_ERRORS if that fails."""
        circuit = self.circuit
        if circuit.down_since is None:
            return
        if replayed is None:
            replayed = self._replay_missed_deletes()
        with circuit.lock:
            if circuit.down_since is None:
                return
            circuit.pending_deletes -= replayed
            outage = monotonic() - circuit.down_since
            errors, circuit.errors_while_down = circuit.errors_while_down, 0
            circuit.down_since = None
        log.info(
            "cache.recovered", cache=self.name, outage_seconds=round(outage, 1), errors=errors, replayed=len(replayed)
        )
        purge = getattr(self.fallback, "purge_expired", None)
        if purge is not None:
            with contextlib.suppress(DatabaseError):  # the next recovery will
                purge()  # the outage's rate-limit counters, once their windows are over

    def probe(self) -> str | None:
        """One round trip to the primary whatever the circuit says (readiness): None if it answered,
        else the kind of error (the log has the rest). Opens or closes the circuit accordingly."""
        nonce = secrets.token_hex(8)
        try:
            replayed = self._replay_missed_deletes() if self.circuit.down_since is not None else None
            self.primary.set("health:ready", nonce, 10)
            read = self.primary.get("health:ready")
            self.primary_answered(replayed)
        except PRIMARY_ERRORS as error:
            self.primary_failed(error)
            return type(error).__name__
        return None if read == nonce else "value not read back"

    def redis_client(self):
        """The primary's raw Redis client (campusiq.core.ratelimit's pipeline), or None while it is down."""
        if not self.primary_available():
            return None
        get_client = getattr(getattr(self.primary, "client", None), "get_client", None)
        return get_client(write=True) if get_client is not None else None

    def _call(self, method: str, *args, on_fallback=None, **kwargs):
        if self.primary_available():
            try:
                # Coming back: the missed deletes first, so that this very call cannot read a stale entry.
                replayed = self._replay_missed_deletes() if self.circuit.down_since is not None else None
                result = getattr(self.primary, method)(*args, **kwargs)
                if replayed is not None:
                    self.primary_answered(replayed)
                return result
            except PRIMARY_ERRORS as error:
                self.primary_failed(error)
        if on_fallback is not None:
            on_fallback()
        return getattr(self.fallback, method)(*args, **kwargs)

    def _remember_deletes(self, keys, version) -> None:
        circuit = self.circuit
        with circuit.lock:
            for key in keys:
                if len(circuit.pending_deletes) >= PENDING_DELETES_MAX:
                    break
                circuit.pending_deletes.add((key, version))

    def _replay_missed_deletes(self) -> set:
        with self.circuit.lock:
            pending = set(self.circuit.pending_deletes)
        by_version: dict[Any, list] = {}
        for key, version in pending:
            by_version.setdefault(version, []).append(key)
        for version, keys in by_version.items():
            self.primary.delete_many(keys, version=version)
        return pending

    # --- the cache API -------------------------------------------------------------------------

    def make_key(self, key, version=None):
        return self.primary.make_key(key, version=version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout=timeout, version=version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default=default, version=version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout=timeout, version=version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout=timeout, version=version)

    def delete(self, key, version=None):
        return self._call("delete", key, version=version, on_fallback=lambda: self._remember_deletes([key], version))

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout=timeout, version=version)

    def delete_many(self, keys, version=None):
        keys = list(keys)
        return self._call(
            "delete_many", keys, version=version, on_fallback=lambda: self._remember_deletes(keys, version)
        )

    def has_key(self, key, version=None):
        return self._call("has_key", key, version=version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta=delta, version=version)

    def decr(self, key, delta=1, version=None):
        return self._call("decr", key, delta=delta, version=version)

    def clear(self):
        return self._call("clear")

    def close(self, **kwargs):
        for backend in (self.primary, self.fallback):
            with contextlib.suppress(PRIMARY_ERRORS):  # closing a connection to a dead Redis: nothing to do
                backend.close(**kwargs)


class LockingDatabaseCache(DatabaseCache):
    """Django's database cache, with an increment that is atomic on PostgreSQL: the row is locked, so
    two requests counting the same rate limit at once both count (Django's reads, then writes)."""

    def incr(self, key, delta=1, version=None):
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        with transaction.atomic(using=db):
            if connection.features.has_select_for_update:
                table = connection.ops.quote_name(self._table)
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT cache_key FROM {table} WHERE cache_key = %s FOR UPDATE",  # noqa: S608  (our table name)  # nosec B608
                        [self.make_and_validate_key(key, version=version)],
                    )
            return super().incr(key, delta=delta, version=version)

    def purge_expired(self) -> int:
        """Deletes the counters whose windows are over (Django's cache only culls past MAX_ENTRIES)."""
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE expires < %s",  # noqa: S608  (our table name)  # nosec B608
                [connection.ops.adapt_datetimefield_value(timezone.now().replace(microsecond=0))],
            )
            return cursor.rowcount


def redis_client(cache: BaseCache):
    """A cache's raw Redis client, for what the cache API cannot say (pipelines, sorted sets): a
    FailoverCache's primary while its circuit is closed, plain django-redis's own; else None."""
    if isinstance(cache, FailoverCache):
        return cache.redis_client()
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    return get_client(write=True) if get_client is not None else None


def _build(config: dict) -> BaseCache:
    return import_string(config["BACKEND"])(config.get("LOCATION", ""), config)


def _kind(backend: BaseCache) -> str:
    return type(backend).__name__
