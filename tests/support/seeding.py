"""Seeding the demo campus inside a savepoint, to compare what two seeds would write."""

from collections.abc import Callable

from django.db import transaction

from portal.demo import demo_data_seed


class _Rollback(Exception):
    pass


def checksum_of_fresh_seed(checksum: Callable[[], str], **seed_arguments) -> str:
    """Seeds inside a savepoint, takes `checksum()`, and undoes it all."""
    try:
        with transaction.atomic():
            demo_data_seed(**seed_arguments)
            value = checksum()
            raise _Rollback
    except _Rollback:
        return value
