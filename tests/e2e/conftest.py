import datetime
import os

import pytest
from django.utils import timezone

from tests.conftest import CHROMIUM_PATH
from tests.factories import TermFactory

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test are safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, never a downloaded browser; no background traffic to the closed network."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM_PATH,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def this_term(db):
    """A term running today (the live server's clock), past its add/drop deadline."""
    today = timezone.localdate()
    return TermFactory(
        name="This term",
        start_date=today - datetime.timedelta(days=30),
        end_date=today + datetime.timedelta(days=60),
        add_drop_deadline=today - datetime.timedelta(days=16),
    )
