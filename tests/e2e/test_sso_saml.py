"""Campus single sign-on by SAML 2.0 in headless Chromium against a real IdP (SimpleSAMLphp): a student
signs in at the campus IdP (its login page, then its self-posting form to our ACS) and lands on their
dashboard; signing out ends the IdP's session too (Single Logout, signed both ways) under CampusIQ's
Content Security Policy."""

import pytest
from playwright.sync_api import Page, expect

from tests.accounts.sso_support import SAML_SLUG
from tests.e2e.test_attendance import console_of
from tests.e2e.test_portal import assert_no_csp_violation
from tests.factories import StudentFactory

pytestmark = [pytest.mark.browser, pytest.mark.saml, pytest.mark.django_db(transaction=True)]


def sign_in_at_the_idp(page: Page, login: str) -> None:
    page.get_by_role("link", name="Sign in with Universidade Exemplo (SAML)").click()
    page.locator("input[name=username]").fill(login)
    page.locator("input[name=password]").fill("password")
    page.locator("#submit_button").click()


def test_a_student_signs_in_at_the_saml_idp_sees_their_dashboard_and_signing_out_ends_both(page: Page, saml_campus):
    StudentFactory(student_number="S2001", user__email="ana@uni.example", user__first_name="Ana")
    console = console_of(page)
    page.goto(f"{saml_campus}/portal/student/")
    page.wait_for_url("**/accounts/login/?next=/portal/student/")
    sign_in_at_the_idp(page, "ana")
    page.wait_for_url(f"{saml_campus}/portal/student/")
    expect(page.locator("main")).to_contain_text("S2001")

    page.get_by_role("button", name="Sign out").click()  # ours, then the IdP's Single Logout, then home
    page.wait_for_url(f"{saml_campus}/")
    assert not page.get_by_role("button", name="Sign out").count()
    page.goto(f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/")
    expect(page.locator("input[name=username]")).to_be_visible()  # the IdP's session is over too
    assert_no_csp_violation(console)
