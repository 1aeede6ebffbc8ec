"""Campus single sign-on by SAML 2.0 against a real IdP (SimpleSAMLphp from Debian, under PHP's server
on a loopback port): SP-initiated and IdP-initiated sign-in, the SP metadata, and tampered, replayed
and unsolicited-with-a-foreign-InResponseTo answers refused, writing nothing."""

import base64
import re
import zlib
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from accounts.models import LinkedIdentity, SignedInSession, User
from accounts.roles import Role
from accounts.services import user_roles
from campusiq.core.models import AuditLogEntry
from tests.accounts.sso_support import (
    SAML_SLUG,
    _form,
    saml_sign_in,
)
from tests.factories import StudentFactory

pytestmark = [pytest.mark.saml, pytest.mark.django_db(transaction=True)]


def written() -> tuple[int, int, int]:
    return User.objects.count(), LinkedIdentity.objects.count(), AuditLogEntry.objects.count()


def test_a_student_signs_in_through_the_saml_idp_and_lands_where_they_were_going(saml_campus, saml_idp, log_output):
    ana = StudentFactory(user__email="ana@uni.example", user__first_name="Ana")
    landed = saml_sign_in(requests.Session(), f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/?next=/portal/student/",
                          "ana")  # fmt: skip
    assert landed.status_code == 200 and landed.url == f"{saml_campus}/portal/student/", landed.text[:400]
    link = LinkedIdentity.objects.get()
    assert (link.user_id, link.issuer, link.subject) == (ana.user_id, saml_idp.metadata_url, "ana@uni.example")
    assert user_roles(ana.user) == {Role.STUDENT}
    assert "Almeida" not in log_output.getvalue()  # pysaml2 logs whole assertions below WARNING


def test_idp_initiated_sign_in_works_and_a_replayed_response_is_refused(saml_campus, saml_idp):
    browser = requests.Session()
    sp = f"{saml_campus}/accounts/sso/{SAML_SLUG}/metadata/"
    start = f"{saml_idp.base}/saml2/idp/SSOService.php?spentityid={sp}"
    action, fields = _form(browser.get(start, timeout=15))
    answer = browser.post(action, data={**fields, "username": "nia", "password": "password"}, timeout=15)
    acs, response_fields = _form(answer)
    landed = browser.post(acs, data=response_fields, timeout=15)
    assert landed.status_code == 200 and User.objects.filter(email="nia@uni.example").exists()
    after = written()
    replayed = requests.post(acs, data=response_fields, timeout=15, allow_redirects=False)
    assert replayed.status_code == 400 and written() == after


def test_a_tampered_response_is_refused_and_writes_nothing(saml_campus, saml_idp):
    browser = requests.Session()
    start = f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/"
    action, fields = _form(browser.get(start, timeout=15))
    acs, response_fields = _form(browser.post(action, data={**fields, "username": "nia", "password": "password"},
                                              timeout=15))  # fmt: skip
    xml = base64.b64decode(response_fields["SAMLResponse"]).decode()
    forged = re.sub(r"nia@uni\.example", "ana@uni.example", xml)
    assert forged != xml
    before = written()
    refused = browser.post(acs, data={**response_fields, "SAMLResponse": base64.b64encode(forged.encode()).decode()},
                           timeout=15, allow_redirects=False)  # fmt: skip
    assert refused.status_code == 400 and "could not be checked" in refused.text and written() == before


def test_the_sp_metadata_names_our_entity_and_assertion_consumer(saml_campus):
    answer = requests.get(f"{saml_campus}/accounts/sso/{SAML_SLUG}/metadata/", timeout=15)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{saml_campus}/accounts/sso/{SAML_SLUG}/metadata/"' in answer.text
    assert f"{saml_campus}/accounts/sso/{SAML_SLUG}/acs/" in answer.text


def test_a_response_to_a_request_this_browser_never_made_is_refused(saml_campus):
    browser = requests.Session()
    start = f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/"
    earlier = browser.get(start, timeout=15, allow_redirects=False)
    other_relay = re.search(r"RelayState=([^&]+)", earlier.headers["Location"]).group(1)
    action, fields = _form(browser.get(start, timeout=15))
    acs, response_fields = _form(browser.post(action, data={**fields, "username": "nia", "password": "password"},
                                              timeout=15))  # fmt: skip
    before = written()
    from urllib.parse import unquote

    for relay in (unquote(other_relay), ""):  # another request's relay state, and none (as if unsolicited)
        refused = requests.post(acs, data={**response_fields, "RelayState": relay}, timeout=15, allow_redirects=False)
        assert refused.status_code == 400, relay
    assert written() == before
    # The answer itself was genuine: with its own relay state it signs in.
    assert browser.post(acs, data=response_fields, timeout=15).status_code == 200


# --- Single Logout -----------------------------------------------------------------------------------------


def signed_in(base: str, login: str) -> requests.Session:
    browser = requests.Session()
    landed = saml_sign_in(browser, f"{base}/accounts/sso/{SAML_SLUG}/login/?next=/portal/", login)
    assert landed.status_code == 200, landed.text[:300]
    return browser


def has_session(browser: requests.Session) -> bool:
    key = browser.cookies.get("sessionid")
    return bool(key) and SignedInSession.objects.filter(session_id=key).exists()


def log_out(base: str, browser: requests.Session) -> requests.Response:
    browser.get(f"{base}/accounts/login/", timeout=15)  # a page with a form: the CSRF cookie
    return browser.post(f"{base}/accounts/logout/", data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                        headers={"Referer": f"{base}/"}, timeout=15, allow_redirects=False)  # fmt: skip


def test_signing_out_ends_the_campusiq_session_and_the_idps_by_single_logout(saml_campus, saml_idp):
    browser = signed_in(saml_campus, "ana")
    link = SignedInSession.objects.get(session_id=browser.cookies["sessionid"])
    assert link.provider == SAML_SLUG and link.provider_subject and link.provider_session  # NameID, SessionIndex
    out = log_out(saml_campus, browser)
    assert out.status_code == 302 and out.headers["Location"].startswith(saml_idp.logout_url)
    assert "Signature=" in out.headers["Location"] and not has_session(browser)  # ours ended first, signed request
    back = browser.get(out.headers["Location"], timeout=15)  # the IdP ends its session, answers our SLS
    assert back.status_code == 200 and back.url == f"{saml_campus}/", (back.url, back.text[:300])
    again = browser.get(f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/", timeout=15)
    assert 'name="username"' in again.text  # the IdP asks who they are again: its session is over


def test_signing_out_at_the_idp_ends_the_campusiq_session_and_no_one_elses(saml_campus, saml_idp):
    ana, nia = signed_in(saml_campus, "ana"), signed_in(saml_campus, "nia")
    done = ana.get(f"{saml_idp.logout_url}?{urlencode({'ReturnTo': f'{saml_campus}/'})}", timeout=15)
    assert done.url.split("?")[0] == f"{saml_campus}/", (done.url, done.text[:300])
    assert not has_session(ana) and has_session(nia)
    assert AuditLogEntry.objects.filter(verb="sso.logged_out").count() == 1


def _logout_request(saml_idp, name_id: str) -> str:
    xml = (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-forged" Version="2.0" '
        'IssueInstant="2030-01-01T00:00:00Z">'
        f"<saml:Issuer>{saml_idp.metadata_url}</saml:Issuer>"
        f'<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">{name_id}</saml:NameID>'
        "</samlp:LogoutRequest>"
    )
    deflated = zlib.compress(xml.encode())[2:-4]  # raw DEFLATE, as the HTTP-Redirect binding carries it
    return base64.b64encode(deflated).decode()


def test_a_logout_request_not_signed_by_the_idp_ends_nothing(saml_campus, saml_idp):
    browser = signed_in(saml_campus, "ana")
    subject = SignedInSession.objects.get(session_id=browser.cookies["sessionid"]).provider_subject
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    request = _logout_request(saml_idp, subject)
    sigalg = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    signed_part = urlencode({"SAMLRequest": request, "SigAlg": sigalg})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = base64.b64encode(other_key.sign(signed_part.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    sls = f"{saml_campus}/accounts/sso/{SAML_SLUG}/sls/"
    for query in (urlencode({"SAMLRequest": request}), f"{signed_part}&{urlencode({'Signature': signature})}"):
        refused = requests.get(f"{sls}?{query}", timeout=15, allow_redirects=False)  # an attacker's link
        assert refused.status_code == 400 and "could not be checked" in refused.text
    assert has_session(browser)


def test_a_logout_response_to_a_request_we_never_sent_is_not_taken_as_confirmation(saml_campus):
    sls = f"{saml_campus}/accounts/sso/{SAML_SLUG}/sls/"
    answer = requests.get(f"{sls}?{urlencode({'SAMLResponse': 'bm90aGluZw==', 'RelayState': 'x'})}", timeout=15)
    assert answer.status_code == 400 and "did not confirm" in answer.text


def test_the_sp_metadata_offers_single_logout(saml_campus):
    answer = requests.get(f"{saml_campus}/accounts/sso/{SAML_SLUG}/metadata/", timeout=15)
    assert f'Location="{saml_campus}/accounts/sso/{SAML_SLUG}/sls/"' in answer.text
    assert "SingleLogoutService" in answer.text and urlsplit(saml_campus).hostname


def _authn_request(location: str) -> str:
    from urllib.parse import parse_qs, urlparse

    raw = base64.b64decode(parse_qs(urlparse(location).query)["SAMLRequest"][0])
    return zlib.decompress(raw, -15).decode()


def test_signing_in_again_makes_the_idp_check_the_person_anew(saml_campus):
    """ "Sign in again" (a page needs a recent sign-in: accounts/reauth.py) sends ForceAuthn, and the IdP,
    which would otherwise answer from its own session, asks for the password again."""
    browser = requests.Session()
    start = f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/"
    assert saml_sign_in(browser, start, "nia").status_code == 200
    plain = browser.get(start, timeout=15, allow_redirects=False).headers["Location"]
    forced = browser.get(f"{start}?reauth=1", timeout=15, allow_redirects=False).headers["Location"]
    assert 'ForceAuthn="true"' in _authn_request(forced) and "ForceAuthn" not in _authn_request(plain)
    _, answered = _form(browser.get(plain, timeout=15))
    assert "SAMLResponse" in answered  # the IdP's session answered at once
    asked = browser.get(forced, timeout=15)
    _, fields = _form(asked)
    assert "SAMLResponse" not in fields and 'name="password"' in asked.text
