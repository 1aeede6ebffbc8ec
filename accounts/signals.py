"""The one place a password change or a deactivation is noticed, whatever made it: the portal's
change and reset pages, the admin's password page and change form, a service, a shell. Each ends
the person's sessions and personal tokens (accounts.services.user_sign_out_everywhere).

Only saves through the ORM's save() are seen; QuerySet.update() of password or is_active would
bypass this and must not be used for them.
"""

from contextvars import ContextVar

from django.contrib.auth.hashers import is_password_usable

from accounts.reauth import session_sign_in_record
from accounts.services import SignOutReason, user_session_register, user_sign_out_everywhere

# The request being served, for the audit log's actor (set by accounts.middleware.CurrentRequestMiddleware).
current_request: ContextVar = ContextVar("campusiq_current_request", default=None)

WATCHED_FIELDS = {"password", "is_active"}


def _actor():
    request = current_request.get()
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def remember_credentials(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """pre_save: compares with the row as stored. Who made the change is read now, while their own
    session still matches the stored password (read after, it would be flushed mid-request)."""
    instance._campusiq_credential_change = None
    if raw or instance.pk is None or (update_fields is not None and not WATCHED_FIELDS & set(update_fields)):
        return
    stored = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    # A password nobody could sign in with (a new student's) being replaced ends nothing.
    password_changed = (
        stored["password"] != instance.password
        and is_password_usable(stored["password"])
        and not _is_hash_upgrade(instance, stored["password"], update_fields)
    )
    deactivated = stored["is_active"] and not instance.is_active
    if password_changed or deactivated:
        reason = SignOutReason.DEACTIVATED if deactivated else SignOutReason.NEW_CREDENTIALS
        instance._campusiq_credential_change = (reason, _actor())


def _is_hash_upgrade(instance, before: str, update_fields) -> bool:
    # check_password() re-hashes with the current hasher and saves the password alone, with
    # _password cleared: the same password, so nobody is signed out for it.
    return (
        getattr(instance, "_password", None) is None
        and update_fields is not None
        and set(update_fields) == {"password"}
        and is_password_usable(before)
        and is_password_usable(instance.password)
    )


def end_sessions_on_credential_change(sender, instance, created=False, raw=False, **kwargs) -> None:
    """post_save: a new password (or none) or a deactivation signs the person out everywhere."""
    change = getattr(instance, "_campusiq_credential_change", None)
    instance._campusiq_credential_change = None
    if change is not None and not created and not raw:
        reason, actor = change
        user_sign_out_everywhere(user=instance, reason=reason, actor=actor)


def register_session(sender, request, user, **kwargs) -> None:
    """user_logged_in: index the new session under its user."""
    session = getattr(request, "session", None)
    if session is not None:
        user_session_register(user=user, session=session)


def record_sign_in_time(sender, request, user, **kwargs) -> None:
    """user_logged_in: the session remembers when, for pages that need a recent sign-in (accounts/reauth.py)."""
    session = getattr(request, "session", None)
    if session is not None:
        session_sign_in_record(session)
