import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """Sign-in and token limits count in the ratelimit cache: each test starts with none spent."""
    caches["ratelimit"].clear()
