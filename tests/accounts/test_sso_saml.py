"""Campus single sign-on by SAML 2.0 against a real IdP (SimpleSAMLphp from Debian, under PHP's server
on a loopback port): SP-initiated and IdP-initiated sign-in, the SP metadata, and tampered, replayed
and unsolicited-with-a-foreign-InResponseTo answers refused, writing nothing."""

import base64
import re

import pytest
import requests

from accounts.models import LinkedIdentity, User
from accounts.roles import Role
from accounts.services import user_roles
from campusiq.core.models import AuditLogEntry
from tests.accounts.sso_support import SAML_PEOPLE, SAML_SLUG, _form, saml_provider_config, saml_sign_in, sso_configure
from tests.factories import StudentFactory
from tests.support.identity_providers import SamlIdp

pytestmark = [pytest.mark.saml, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def saml_idp(live_server, tmp_path_factory):
    base = f"{live_server.url}/accounts/sso/{SAML_SLUG}"
    idp = SamlIdp(root=tmp_path_factory.mktemp("saml-idp"), users=SAML_PEOPLE, sp_entity_id=f"{base}/metadata/",
                  acs_url=f"{base}/acs/")  # fmt: skip
    idp.start()
    yield idp
    idp.stop()


@pytest.fixture
def saml_campus(settings, monkeypatch, tmp_path, saml_idp, live_server):
    from accounts.services import roles_sync_groups

    roles_sync_groups()
    sso_configure(settings, monkeypatch, tmp_path, [saml_provider_config(saml_idp)])
    return live_server.url


def written() -> tuple[int, int, int]:
    return User.objects.count(), LinkedIdentity.objects.count(), AuditLogEntry.objects.count()


def test_a_student_signs_in_through_the_saml_idp_and_lands_where_they_were_going(saml_campus, saml_idp):
    ana = StudentFactory(user__email="ana@uni.example", user__first_name="Ana")
    landed = saml_sign_in(requests.Session(), f"{saml_campus}/accounts/sso/{SAML_SLUG}/login/?next=/portal/student/",
                          "ana")  # fmt: skip
    assert landed.status_code == 200 and landed.url == f"{saml_campus}/portal/student/", landed.text[:400]
    link = LinkedIdentity.objects.get()
    assert (link.user_id, link.issuer, link.subject) == (ana.user_id, saml_idp.metadata_url, "ana@uni.example")
    assert user_roles(ana.user) == {Role.STUDENT}


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
