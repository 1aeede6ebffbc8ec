import os

import pytest

from tests.conftest import CHROMIUM_PATH

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
