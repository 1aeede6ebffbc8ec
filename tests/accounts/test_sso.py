"""Campus single sign-on by OpenID Connect, against a real provider (panva's oidc-provider, started on
a loopback port): who is who (linked, found or provisioned), roles from the provider's groups, every
refusal writing nothing, and logout at both ends. Driven over HTTP against the live server."""

import re
from urllib.parse import urljoin

import pytest
import requests
from django.contrib.auth.models import Group

from accounts.models import LinkedIdentity, SignedInSession, User
from accounts.roles import Role, group_name
from accounts.services import user_roles
from campusiq.core.models import AuditLogEntry
from tests.accounts.sso_support import (
    SLUG,
    provider_config,
    provider_sign_in,
    sso_configure,
)
from tests.factories import StudentFactory, UserFactory

pytestmark = [pytest.mark.oidc, pytest.mark.django_db(transaction=True)]


def sign_in(base: str, login: str, next_url: str = "/portal/") -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    return browser, provider_sign_in(browser, f"{base}/accounts/sso/{SLUG}/login/?next={next_url}", login)


def written() -> tuple[int, int, int]:
    return User.objects.count(), LinkedIdentity.objects.count(), AuditLogEntry.objects.count()


def test_a_student_signs_in_with_the_campus_account_and_lands_where_they_were_going(sso_campus, oidc_provider):
    ana = StudentFactory(student_number="S1001", user__email="ana@uni.example", user__first_name="Ana")
    login_page = requests.get(f"{sso_campus}/accounts/login/", timeout=10)
    assert "Sign in with Universidade Exemplo" in login_page.text
    _, landed = sign_in(sso_campus, "ana", next_url="/portal/student/")
    assert landed.status_code == 200 and landed.url == f"{sso_campus}/portal/student/", landed.text[:300]
    assert "Ana" in landed.text
    link = LinkedIdentity.objects.get()
    assert (link.user_id, link.issuer, link.subject, link.provider) == (ana.user_id, oidc_provider.issuer, "ana", SLUG)
    assert AuditLogEntry.objects.filter(verb="sso.linked", object_id=str(ana.user_id)).exists()
    # The second time, the link finds them (a changed email at the provider would not matter).
    _, again = sign_in(sso_campus, "ana", next_url="/portal/student/")
    assert again.status_code == 200 and LinkedIdentity.objects.count() == 1
    signed_in = AuditLogEntry.objects.filter(verb="sso.signed_in", object_id=str(ana.user_id))
    assert [entry.changes["provider"][1] for entry in signed_in] == [SLUG, SLUG]  # each sign-in, in the audit log


def test_a_newcomer_of_the_campus_domain_gets_an_account_with_the_role_their_groups_give(sso_campus):
    _, landed = sign_in(sso_campus, "newcomer")
    assert landed.status_code == 200
    user = User.objects.get(email="newcomer@uni.example")
    assert (user.first_name, user.last_name, user.has_usable_password()) == ("Nia", "New", False)
    assert user_roles(user) == {Role.STUDENT}
    assert AuditLogEntry.objects.filter(verb="sso.provisioned", object_id=str(user.pk)).exists()


def test_roles_the_provider_manages_follow_its_groups_at_every_sign_in_and_others_stay(sso_campus):
    lena = UserFactory(email="lena@uni.example", roles=[Role.STUDENT, Role.ADVISOR])
    sign_in(sso_campus, "lena")
    assert user_roles(lena) == {Role.LECTURER, Role.ADVISOR}  # student removed, lecturer given, advisor kept
    assert set(AuditLogEntry.objects.filter(object_id=str(lena.pk)).values_list("verb", flat=True)) >= {
        "role.granted",
        "role.revoked",
    }


def test_someone_outside_the_campus_domains_is_refused_and_nothing_is_written(sso_campus):
    before = written()
    _, refused = sign_in(sso_campus, "outsider")
    assert refused.status_code == 403 and "no CampusIQ account for you" in refused.text
    assert "Reference" in refused.text
    assert written() == before


def test_an_identity_provider_asserting_a_staff_accounts_email_does_not_get_that_account(sso_campus):
    admin = UserFactory(email="admin@uni.example", roles=[Role.ADMIN])
    before = written()
    _, refused = sign_in(sso_campus, "admin")
    assert refused.status_code == 403 and "staff role" in refused.text
    assert written() == before and user_roles(admin) == {Role.ADMIN}
    assert not Group.objects.get(name=group_name(Role.STUDENT)).user_set.filter(pk=admin.pk).exists()


def test_a_callback_the_site_never_asked_for_is_refused_and_writes_nothing(sso_campus):
    before = written()
    forged = requests.get(f"{sso_campus}/accounts/sso/{SLUG}/callback/?code=stolen&state=made-up", timeout=10)
    assert forged.status_code == 400 and "could not be checked" in forged.text and written() == before
    replay_browser, landed = sign_in(sso_campus, "newcomer")
    assert landed.status_code == 200
    after_first = written()
    # The provider's code, sent again (a replayed answer): the state was used up with the first.
    first_callback = next(r for r in landed.history if "/callback/" in r.url)
    replayed = replay_browser.get(first_callback.url, timeout=10, allow_redirects=False)
    assert replayed.status_code == 400 and written() == after_first


def test_a_provider_that_is_down_is_a_readable_page_not_an_error(settings, monkeypatch, tmp_path, live_server):
    from tests.support.processes import free_port

    sso_configure(settings, monkeypatch, tmp_path, [provider_config(f"http://127.0.0.1:{free_port()}")])
    answer = requests.get(f"{live_server.url}/accounts/sso/{SLUG}/login/", timeout=15)
    assert answer.status_code == 503 and "cannot be reached just now" in answer.text


def test_signing_out_ends_the_campusiq_session_and_the_providers(sso_campus, oidc_provider):
    StudentFactory(student_number="S1001", user__email="ana@uni.example")
    browser, _ = sign_in(sso_campus, "ana")
    browser.get(f"{sso_campus}/accounts/login/", timeout=10)  # a page with a form: the CSRF cookie
    csrf = browser.cookies["csrftoken"]
    out = browser.post(f"{sso_campus}/accounts/logout/", data={"csrfmiddlewaretoken": csrf},
                       headers={"Referer": f"{sso_campus}/"}, timeout=10, allow_redirects=False)  # fmt: skip
    assert out.status_code == 302 and out.headers["Location"].startswith(f"{oidc_provider.issuer}/session/end")
    assert "id_token_hint=" in out.headers["Location"]
    assert (
        browser.get(f"{sso_campus}/portal/student/", timeout=10, allow_redirects=False).status_code == 302
    )  # signed out
    back = provider_logout_confirm(browser, out.headers["Location"])
    assert back.url.split("?")[0] == f"{sso_campus}/"  # the provider's session ended; it sent the person home
    again = browser.get(f"{sso_campus}/accounts/sso/{SLUG}/login/", timeout=10)
    assert 'name="login"' in again.text  # the provider asks who they are again: its session is over


def provider_logout_confirm(browser: requests.Session, url: str) -> requests.Response:
    """On the provider's own logout page, "Yes, sign me out" (its form, posted as a browser would)."""
    page = browser.get(url, timeout=10)
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action, f"no logout form at the provider: {page.status_code}\n{page.text[:400]}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return browser.post(urljoin(page.url, action.group(1)), data={**fields, "logout": "yes"}, timeout=10)


def test_signing_out_at_the_provider_ends_the_campusiq_session_signed_in_through_it(sso_campus, oidc_provider):
    student = StudentFactory(student_number="S1001", user__email="ana@uni.example")
    ana, _ = sign_in(sso_campus, "ana")
    lena, _ = sign_in(sso_campus, "lena")  # someone else, in another browser
    assert ana.get(f"{sso_campus}/portal/student/", timeout=10, allow_redirects=False).status_code == 200
    # Ana signs out at the campus provider itself (its portal, another service): its server tells ours.
    provider_logout_confirm(ana, f"{oidc_provider.issuer}/session/end")
    answer = ana.get(f"{sso_campus}/portal/student/", timeout=10, allow_redirects=False)
    assert answer.status_code == 302 and "/accounts/login/" in answer.headers["Location"]
    assert lena.get(f"{sso_campus}/portal/", timeout=10, allow_redirects=False).status_code in {200, 302}
    assert "sessionid" in lena.cookies and SignedInSession.objects.filter(user__email="lena@uni.example").exists()
    assert not SignedInSession.objects.filter(user__email="ana@uni.example").exists()
    assert list(AuditLogEntry.objects.filter(verb="sso.logged_out").values_list("object_id", flat=True)) == [
        str(student.user_id)
    ]


def test_the_providers_multi_factor_claim_reaches_the_admin(sso_campus, oidc_provider, settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    admin = UserFactory(email="admin@uni.example", roles=[Role.ADMIN])
    LinkedIdentity.objects.create(user=admin, provider=SLUG, issuer=oidc_provider.issuer, subject="admin-mfa")
    _, landed = sign_in(sso_campus, "admin-mfa", next_url="/admin/")
    assert landed.status_code == 200 and landed.url == f"{sso_campus}/admin/", landed.url
    assert user_roles(admin) == {Role.ADMIN}  # a role the provider does not manage stays


def test_a_campus_account_gets_an_api_token_on_its_page_and_signing_in_again_asks_the_provider(
    sso_campus, oidc_provider
):
    """No password, so no token endpoint: the "API tokens" page issues one, which works on the API.
    An ordinary sign-in is answered from the provider's session; "Sign in again" (prompt=login) asks
    the person anew."""
    browser, landed = sign_in(sso_campus, "newcomer", next_url="/accounts/tokens/")
    assert landed.url == f"{sso_campus}/accounts/tokens/" and "Make token" in landed.text, landed.text[:300]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', landed.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "name": "phone", "scope": "read", "lifetime_days": 7}
    made = browser.post(landed.url, data=form, timeout=10)
    assert made.status_code == 201
    key = re.search(r'id="issued-key"[^>]*value="([^"]+)"', made.text).group(1)
    me = requests.get(f"{sso_campus}/api/v1/me/", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert me.status_code == 200 and me.json()["email"] == "newcomer@uni.example"
    start = f"{sso_campus}/accounts/sso/{SLUG}/login/?next=/accounts/tokens/"
    assert browser.get(start, timeout=10).url == f"{sso_campus}/accounts/tokens/"
    asked = browser.get(f"{start}&reauth=1", timeout=10)
    assert asked.url.startswith(oidc_provider.issuer) and 'name="login"' in asked.text
