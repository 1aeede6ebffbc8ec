"""Campus single sign-on in headless Chromium against a real OpenID Connect provider
(tests/support/oidc): a student who scans the class's QR code while signed out signs in at the
campus provider and ends checked in; a lecturer signs in the same way and opens check-in; signing
out ends the provider's session too. The Content Security Policy holds on the way."""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.services import user_roles
from attendance.models import AttendanceRecord, ClassSession
from attendance.qr import qr_token_make
from attendance.services import class_session_open
from tests.e2e.test_attendance import console_of
from tests.e2e.test_portal import assert_no_csp_violation
from tests.factories import (
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.oidc, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lecture(sso_campus):
    today = timezone.localdate()
    term = TermFactory(start_date=today - datetime.timedelta(days=30), end_date=today + datetime.timedelta(days=60),
                       add_drop_deadline=today - datetime.timedelta(days=16))  # fmt: skip
    lena = UserFactory(email="lena@uni.example", first_name="Lena", roles=[])  # her role comes from the provider
    section = SectionFactory(term=term, lecturers=[lena], course=CourseFactory(code="CS101", title="Programming One"))
    ana = StudentFactory(student_number="S1001", user__email="ana@uni.example", user__first_name="Ana")
    EnrollmentFactory(student=ana, section=section)
    now = timezone.now()
    session = ClassSessionFactory(section=section, starts_at=now - datetime.timedelta(minutes=2),
                                  ends_at=now + datetime.timedelta(minutes=88))  # fmt: skip
    return {"base": sso_campus, "section": section, "session": session, "ana": ana}


def sign_in_at_the_provider(page: Page, login: str) -> None:
    page.get_by_role("link", name="Sign in with Universidade Exemplo").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any")
    page.get_by_role("button", name="Sign-in").click()


def test_a_student_scans_the_code_signed_out_signs_in_at_the_campus_and_is_checked_in(page: Page, lecture):
    session = class_session_open(session=lecture["session"], actor=None)
    console = console_of(page)
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{lecture['base']}/c/{qr_token_make(session)}/")
    page.wait_for_url("**/accounts/login/?next=/attendance/check-in/confirm/")
    sign_in_at_the_provider(page, "ana")
    page.wait_for_url("**/attendance/check-in/confirm/")
    expect(page.locator("main")).to_contain_text("CS101 Programming One")
    page.get_by_role("button", name="Check me in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are checked in")
    record = AttendanceRecord.objects.get()
    assert (record.student_id, record.session_id, record.method) == (lecture["ana"].pk, session.pk, "qr")
    assert_no_csp_violation(console)


def test_a_lecturer_signs_in_at_the_campus_opens_check_in_and_signing_out_ends_both_sessions(page: Page, lecture):
    console = console_of(page)
    section = lecture["section"]
    page.goto(f"{lecture['base']}/attendance/sections/{section.pk}/sessions/")
    sign_in_at_the_provider(page, "lena")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Class sessions: CS101 Programming One")
    page.get_by_role("button", name=re.compile("Open check-in")).click()
    expect(page.get_by_role("status")).to_contain_text("Check-in is open")
    assert ClassSession.objects.get(pk=lecture["session"].pk).state == ClassSession.State.OPEN

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign me out").click()  # the provider's own page
    page.wait_for_url(re.compile(rf"^{re.escape(lecture['base'])}/(\?state=[\w-]+)?$"))  # home, after the provider
    assert not page.get_by_role("button", name="Sign out").count()
    # The provider's session is over too: signing in again asks for the login, not straight through.
    page.goto(f"{lecture['base']}/accounts/login/")
    page.get_by_role("link", name="Sign in with Universidade Exemplo").click()
    expect(page.locator("input[name=login]")).to_be_visible()
    assert_no_csp_violation(console)
    assert user_roles(section.lecturers.get()) == {Role.LECTURER}  # from the provider's "lecturers" group


def test_an_admin_without_the_providers_second_factor_is_asked_for_ours_and_with_it_is_let_in(
    page: Page, sso_campus, oidc_provider, browser, settings
):
    from accounts.models import LinkedIdentity

    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    admin = UserFactory(email="admin@uni.example", first_name="Ida", roles=[Role.ADMIN])
    for subject in ("admin", "admin-mfa"):  # linked by a superuser: the provider's two ways of signing her in
        LinkedIdentity.objects.create(user=admin, provider="campus", issuer=oidc_provider.issuer, subject=subject)
    page.goto(f"{sso_campus}/accounts/login/?next=/admin/")
    sign_in_at_the_provider(page, "admin")  # a password only, at the provider
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor sign-in")
    assert "/admin/" not in page.url.split("?")[0]

    other = browser.new_context().new_page()  # another browser: a new sign-in at the provider
    other.goto(f"{sso_campus}/accounts/login/?next=/admin/")
    sign_in_at_the_provider(other, "admin-mfa")  # the provider's own second factor ("amr": ["mfa"])
    other.wait_for_url(f"{sso_campus}/admin/")
    expect(other.locator("#site-name, h1").first).to_be_visible()
    other.context.close()
