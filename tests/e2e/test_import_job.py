"""Headless Chromium: a big import's admin page moves its progress bar from the JSON endpoint while the
job runs (static JS, no inline code: the Content Security Policy holds) and shows the result once done."""

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from campusiq.core import imports
from campusiq.core.models import ImportJob
from tests.e2e.test_attendance import console_of
from tests.e2e.test_portal import assert_no_csp_violation, sign_in
from tests.factories import ImportJobFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_progress_bar_follows_a_running_job_to_its_end(page: Page, live_server):
    UserFactory(roles=[Role.REGISTRAR], email="rita@campus.example", is_staff=True)
    job = ImportJobFactory(status=ImportJob.Status.RUNNING, rows_total=10)
    imports._progress_write(job, rows_done=4, errors=0, started=0)  # what the worker's last chunk wrote
    console = console_of(page)

    page.goto(f"{live_server.url}/admin/core/importjob/{job.pk}/change/")
    sign_in(page, "rita@campus.example")
    progress = page.get_by_text("4 of 10 rows")
    expect(progress).to_be_visible()
    expect(page.get_by_label("Rows done")).to_have_attribute("value", "4")

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.SUCCEEDED, rows_done=10, rows_written=10)
    expect(page.get_by_text("Succeeded: 10 of 10 rows, 0 errors.")).to_be_visible()  # the page reloaded
    expect(page.get_by_role("button", name="Cancel the import")).to_have_count(0)
    assert_no_csp_violation(console)
