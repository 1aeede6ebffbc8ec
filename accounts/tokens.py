"""API tokens: issue, check and revoke. Keys look like ciq_<prefix>_<secret>; only their hash is kept."""

import datetime
import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, User
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from campusiq.core.services import audit_log_write

KEY_PREFIX = "ciq_"
# A token's last use is written at most this often, so reads do not become writes.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=5)
TOKEN_CACHE_SECONDS = 60


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_max_days(*, user: User) -> int:
    """The longest a token of this user may live: personal and service-account tokens differ."""
    return settings.API_TOKEN_MAX_DAYS[_kind(user)]


def _kind(user: User) -> str:
    return ApiToken.Kind.SERVICE if user.is_service_account else ApiToken.Kind.PERSONAL


def api_token_lifetime_validate(*, user: User, lifetime: datetime.timedelta) -> None:
    kind = _kind(user)
    max_days = api_token_max_days(user=user)
    if not datetime.timedelta(minutes=1) <= lifetime <= datetime.timedelta(days=max_days):
        raise ServiceError(
            "token_lifetime_invalid",
            f"A {kind} token lives between a minute and {max_days} days.",
            field="lifetime_days",
        )


@transaction.atomic
def api_token_issue(
    *,
    user: User,
    name: str,
    scope: str = ApiToken.Scope.READ,
    lifetime: datetime.timedelta | None = None,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """Creates a token and returns it with its key; the key is never stored and cannot be shown again."""
    kind = _kind(user)
    lifetime = lifetime or datetime.timedelta(days=api_token_max_days(user=user))
    api_token_lifetime_validate(user=user, lifetime=lifetime)
    name = name.strip()
    if not name:
        raise ServiceError("token_name_required", "Give the token a name, to know it again.", field="name")
    if scope not in ApiToken.Scope.values:
        raise ServiceError(
            "token_scope_invalid", f"Scope must be one of {', '.join(ApiToken.Scope.values)}.", field="scope"
        )
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        kind=kind,
        scope=scope,
        prefix=prefix,
        key_hash=_hash(key),
        expires_at=now + lifetime,
    )
    audit_log_write(
        actor=actor or user,
        verb="token.created",
        target=token,
        action=AuditLogEntry.Action.CREATE,
        changes={"scope": [None, scope], "expires_at": [None, token.expires_at.isoformat()]},
    )
    return token, key


def api_token_authenticate(key: str) -> ApiToken | None:
    """The active token for this key, or None (unknown, wrong, expired, revoked, or user inactive)."""
    if not key.startswith(KEY_PREFIX) or key.count("_") < 2:
        return None
    prefix = key[len(KEY_PREFIX) :].split("_", 1)[0]
    token = _token_by_prefix(prefix)
    if token is None or not hmac.compare_digest(token.key_hash, _hash(key)):
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        cache.set(_cache_key(token.prefix), token, TOKEN_CACHE_SECONDS)
    return token


def _cache_key(prefix: str) -> str:
    return f"campusiq:api-token:{prefix}"


def _token_by_prefix(prefix: str) -> ApiToken | None:
    """The token with its user and (for students) profile, from the shared cache for a minute at most.

    Every request of a phone or a card reader needs it, so it is cached; anything that can make it
    wrong deletes the entry at once (token_cache_forget: revocation, user and student changes)."""
    key = _cache_key(prefix)
    token = cache.get(key)
    if token is None:
        token = ApiToken.objects.select_related("user", "user__student").filter(prefix=prefix).first()
        if token is not None:
            cache.set(key, token, TOKEN_CACHE_SECONDS)
    return token


def token_cache_forget(*, user_id: int | None = None, prefixes: list[str] | None = None) -> None:
    prefixes = list(prefixes or [])
    if user_id is not None:
        prefixes += list(ApiToken.objects.filter(user_id=user_id).values_list("prefix", flat=True))
    cache.delete_many([_cache_key(prefix) for prefix in prefixes])


def token_cache_forget_user_changed(*, user_id: int) -> None:
    """The user's cached tokens carry the user and their student profile: a change to either drops
    them now, and again after commit (a request between the two may have cached the old row)."""
    token_cache_forget(user_id=user_id)
    transaction.on_commit(lambda: token_cache_forget(user_id=user_id))


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User | None, reason: str = "") -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        token_cache_forget(prefixes=[token.prefix])
        transaction.on_commit(lambda: token_cache_forget(prefixes=[token.prefix]))
        audit_log_write(
            actor=actor,
            verb="token.revoked",
            target=token,
            changes={"revoked_at": [None, token.revoked_at.isoformat()]},
            reason=reason,
        )
    return token
