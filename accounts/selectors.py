"""Reads of accounts' data, scoped to who asks: a person's own API tokens."""

from django.db.models import QuerySet

from accounts.models import ApiToken, User


def personal_tokens_of(user: User) -> QuerySet[ApiToken]:
    """The person's own personal tokens, newest first (revoked and expired ones too); never anyone else's."""
    return (
        ApiToken.objects.filter(user=user, kind=ApiToken.Kind.PERSONAL).defer("key_hash").order_by("-created_at", "-pk")
    )
