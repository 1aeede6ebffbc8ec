"""Every way an OpenID Connect answer can be forged or stale is refused with a readable page and writes
nothing: id tokens with another key's signature, `alg: none`, another audience or issuer, expired,
a nonce we never sent, no id token at all, a state we never sent, a discovery document for another
issuer. The provider's endpoints are replaced by crafted answers; everything of ours runs as in use."""

import base64
import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
from authlib.integrations.django_client.apps import DjangoOAuth2App
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from accounts.models import LinkedIdentity, User
from campusiq.core.models import AuditLogEntry
from tests.accounts.sso_support import CLIENT_ID, SLUG, provider_config, sso_configure

pytestmark = pytest.mark.django_db

ISSUER = "https://login.uni.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "campus-1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "campus-1"})  # same key id, not the provider's


def metadata(issuer: str = ISSUER) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "end_session_endpoint": f"{ISSUER}/session/end",
        "id_token_signing_alg_values_supported": ["RS256"],
    }


@pytest.fixture
def provider(settings, monkeypatch, tmp_path):
    sso_configure(settings, monkeypatch, tmp_path, [provider_config(ISSUER)])
    answers = {"metadata": metadata(), "token": {}}
    monkeypatch.setattr(DjangoOAuth2App, "load_server_metadata", lambda self: answers["metadata"])
    monkeypatch.setattr(
        DjangoOAuth2App, "fetch_jwk_set", lambda self, force=False: KeySet([KEY]).as_dict(private=False)
    )
    monkeypatch.setattr(DjangoOAuth2App, "fetch_access_token", lambda self, **params: answers["token"])
    return answers


def begin(client) -> dict[str, str]:
    """Starts a sign-in; returns the state and nonce the site sent to the provider."""
    response = client.get(f"/accounts/sso/{SLUG}/login/")
    assert response.status_code == 302, response.content[:300]
    query = parse_qs(urlparse(response["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    return {"state": query["state"][0], "nonce": query["nonce"][0]}


def claims(nonce: str, **changes) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "s-42", "iat": now, "exp": now + 300, "nonce": nonce,
            "email": "nia@uni.example", "email_verified": True, "groups": ["students"]}  # fmt: skip
    return {**base, **changes}


def signed(payload: dict, key=KEY) -> str:
    return jwt.encode({"alg": "RS256", "kid": "campus-1"}, payload, key)


def unsigned(payload: dict) -> str:
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'none'})}.{part(payload)}."


def callback(client, state: str):
    return client.get(f"/accounts/sso/{SLUG}/callback/", {"code": "the-code", "state": state})


def written() -> tuple[int, int, int]:
    return User.objects.count(), LinkedIdentity.objects.count(), AuditLogEntry.objects.count()


def test_a_genuine_answer_signs_the_person_in(client, provider):
    sent = begin(client)
    provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": signed(claims(sent["nonce"]))}
    response = callback(client, sent["state"])
    assert response.status_code == 302 and LinkedIdentity.objects.filter(subject="s-42").exists()


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda nonce: signed(claims(nonce), key=OTHER_KEY), id="signed-by-another-key"),
        pytest.param(lambda nonce: unsigned(claims(nonce)), id="alg-none"),
        pytest.param(lambda nonce: signed(claims(nonce, aud="someone-else")), id="another-audience"),
        pytest.param(lambda nonce: signed(claims(nonce, iss="https://evil.example")), id="another-issuer"),
        pytest.param(lambda nonce: signed(claims(nonce, exp=int(time.time()) - 3600)), id="expired"),
        pytest.param(lambda nonce: signed(claims("a-nonce-we-never-sent")), id="nonce-mismatch"),
        pytest.param(lambda nonce: signed({k: v for k, v in claims(nonce).items() if k != "sub"}), id="no-subject"),
        pytest.param(lambda nonce: signed(claims(nonce))[:-6] + "AAAAAA", id="tampered-signature"),
        pytest.param(lambda nonce: None, id="no-id-token"),
    ],
)
def test_a_forged_or_stale_id_token_is_refused_and_writes_nothing(client, provider, forge):
    sent = begin(client)
    token = forge(sent["nonce"])
    provider["token"] = {"access_token": "at", "token_type": "Bearer", **({"id_token": token} if token else {})}
    before = written()
    response = callback(client, sent["state"])
    assert response.status_code == 400 and b"could not be checked" in response.content
    assert written() == before and "_auth_user_id" not in client.session


def test_a_state_the_site_never_sent_is_refused(client, provider):
    sent = begin(client)
    provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": signed(claims(sent["nonce"]))}
    before = written()
    assert callback(client, "not-" + sent["state"]).status_code == 400
    assert written() == before


def test_a_discovery_document_for_another_issuer_is_refused_before_anyone_is_sent_there(client, provider):
    provider["metadata"] = metadata(issuer="https://evil.example")
    response = client.get(f"/accounts/sso/{SLUG}/login/")
    assert response.status_code == 503 and b"cannot be reached" in response.content


def test_the_provider_refusing_the_person_is_a_readable_page(client, provider):
    sent = begin(client)
    response = client.get(f"/accounts/sso/{SLUG}/callback/", {"error": "access_denied", "state": sent["state"]})
    assert response.status_code == 400 and written() == (0, 0, 0)


def test_an_unknown_provider_is_not_found(client, provider):
    assert client.get("/accounts/sso/nobody/login/").status_code == 404


def test_multi_factor_asserted_by_the_provider_meets_the_admins_two_factor_and_its_absence_does_not(
    client, provider, settings
):
    from accounts.roles import Role
    from tests.factories import UserFactory

    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    admin = UserFactory(email="it@uni.example", roles=[Role.ADMIN])
    LinkedIdentity.objects.create(user=admin, provider=SLUG, issuer=ISSUER, subject="it-1")  # linked by an admin
    for amr, admitted in ((["pwd"], False), (["pwd", "mfa"], True)):
        client.logout()
        sent = begin(client)
        token = signed(claims(sent["nonce"], sub="it-1", email="it@uni.example", groups=[], amr=amr))
        provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": token}
        assert callback(client, sent["state"]).status_code == 302
        answer = client.get("/admin/")
        assert (answer.status_code == 200) is admitted, (amr, answer.status_code, answer.get("Location"))
        if not admitted:  # no device yet: sent to set up the local second factor
            assert answer.status_code == 302 and "/accounts/two-factor/" in answer["Location"]


def test_with_password_sign_in_off_a_linked_account_uses_the_campus_and_a_local_one_keeps_its_password(
    client, settings, monkeypatch, tmp_path
):
    from rest_framework.test import APIClient

    from accounts.roles import Role
    from tests.factories import UserFactory

    sso_configure(settings, monkeypatch, tmp_path, [provider_config(ISSUER, password_sign_in=False)])
    ana = UserFactory(email="ana@uni.example", password="a-long-passphrase-1")
    LinkedIdentity.objects.create(user=ana, provider=SLUG, issuer=ISSUER, subject="ana")
    refused = client.post("/accounts/login/", {"username": "ana@uni.example", "password": "a-long-passphrase-1"})
    assert refused.status_code == 200 and b"signs in with Universidade Exemplo" in refused.content
    assert "_auth_user_id" not in client.session
    api = APIClient().post(
        "/api/v1/auth/token/", {"email": "ana@uni.example", "password": "a-long-passphrase-1"}, format="json"
    )
    assert api.status_code == 403 and api.json()["code"] == "password_sign_in_off"
    # The break-glass administrator, linked to no provider, signs in with a password as ever.
    UserFactory(email="break-glass@uni.example", password="a-long-passphrase-2", roles=[Role.ADMIN])
    signed_in = client.post(
        "/accounts/login/", {"username": "break-glass@uni.example", "password": "a-long-passphrase-2"}
    )
    assert signed_in.status_code == 302


def test_the_admin_shows_a_persons_linked_identities_and_the_roles_each_provider_manages(client, provider):
    from tests.factories import UserFactory

    superuser = UserFactory(email="root@uni.example", is_superuser=True, is_staff=True)
    ana = UserFactory(email="ana@uni.example")
    LinkedIdentity.objects.create(user=ana, provider=SLUG, issuer=ISSUER, subject="ana-7")
    client.force_login(superuser)
    page = client.get(f"/admin/accounts/user/{ana.pk}/change/").content.decode()
    assert "ana-7" in page and "Lecturer, Student" in page


# --- Back-channel logout: the provider's server says a session ended -------------------------------------

LOGOUT_EVENT = {"http://schemas.openid.net/event/backchannel-logout": {}}


def logout_claims(**changes) -> dict:
    base = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "s-42", "sid": "sid-1", "iat": int(time.time()),
            "jti": f"jti-{time.time_ns()}", "events": LOGOUT_EVENT}  # fmt: skip
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def signed_in_through_the_provider(client, provider, sid: str = "sid-1", sub: str = "s-42") -> None:
    sent = begin(client)
    token = signed(claims(sent["nonce"], sid=sid, sub=sub, email=f"{sub}@uni.example"))
    provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": token}
    assert callback(client, sent["state"]).status_code == 302 and "_auth_user_id" in client.session


def backchannel(token: str):
    from django.test import Client

    # The provider's server: no cookies of ours, no CSRF token.
    return Client(enforce_csrf_checks=True).post(f"/accounts/sso/{SLUG}/backchannel-logout/", {"logout_token": token})


def still_signed_in(client) -> bool:
    return "_auth_user_id" in client.session  # read from the session store, where a logout deletes it


def test_a_logout_the_provider_reports_ends_that_session_and_no_other(client, provider):
    from django.test import Client

    from accounts.models import SignedInSession

    other = Client()
    signed_in_through_the_provider(other, provider, sid="sid-2", sub="s-43")  # another person, another session
    signed_in_through_the_provider(client, provider)
    assert SignedInSession.objects.filter(provider=SLUG, provider_subject="s-42", provider_session="sid-1").exists()
    answer = backchannel(signed(logout_claims()))
    assert answer.status_code == 200 and answer["Cache-Control"].startswith("max-age=0")
    assert not still_signed_in(client) and still_signed_in(other)
    assert AuditLogEntry.objects.filter(verb="sso.logged_out").count() == 1


def test_a_logout_naming_only_the_person_ends_each_of_their_sessions_from_that_provider(client, provider):
    from django.test import Client

    phone = Client()
    signed_in_through_the_provider(phone, provider, sid="sid-phone")
    signed_in_through_the_provider(client, provider, sid="sid-laptop")
    assert backchannel(signed(logout_claims(sid=None))).status_code == 200
    assert not still_signed_in(client) and not still_signed_in(phone)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda: signed(logout_claims(), key=OTHER_KEY), id="signed-by-another-key"),
        pytest.param(lambda: unsigned(logout_claims()), id="alg-none"),
        pytest.param(lambda: signed(logout_claims(aud="someone-else")), id="another-audience"),
        pytest.param(lambda: signed(logout_claims(iss="https://evil.example")), id="another-issuer"),
        pytest.param(lambda: signed(logout_claims(iat=int(time.time()) - 3600)), id="stale"),
        pytest.param(lambda: signed(logout_claims(events=None)), id="not-a-logout-event"),
        pytest.param(lambda: signed(logout_claims(events={"urn:other": {}})), id="another-event"),
        pytest.param(lambda: signed(logout_claims(nonce="n")), id="an-id-token-passed-off"),
        pytest.param(lambda: signed(logout_claims(sid=None, sub=None)), id="names-no-one"),
        pytest.param(lambda: signed(logout_claims(jti=None)), id="no-jti"),
        pytest.param(lambda: signed(logout_claims())[:-6] + "AAAAAA", id="tampered-signature"),
        pytest.param(lambda: "", id="no-token"),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
def test_a_forged_or_stale_logout_token_is_refused_and_ends_nothing(client, provider, forge):
    signed_in_through_the_provider(client, provider)
    before = AuditLogEntry.objects.count()
    answer = backchannel(forge())
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request" and answer.json()["request_id"]
    assert still_signed_in(client) and AuditLogEntry.objects.count() == before


def test_a_replayed_logout_token_is_refused(client, provider):
    token = signed(logout_claims())
    signed_in_through_the_provider(client, provider)
    assert backchannel(token).status_code == 200 and not still_signed_in(client)
    signed_in_through_the_provider(client, provider)  # signed in again with the same provider session
    assert backchannel(token).status_code == 400 and still_signed_in(client)


def test_back_channel_logout_takes_posts_only(client, provider):
    assert client.get(f"/accounts/sso/{SLUG}/backchannel-logout/").status_code == 405
