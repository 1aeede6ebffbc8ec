"""The "API tokens" page: a person's own personal tokens, a new one after a recent sign-in (its key
shown once, never stored, cached or logged), revoking their own. Above all for people who sign in
through their campus provider and have no password for the API's token endpoint (docs/SSO.md)."""

import datetime
import re

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, SignedInSession
from accounts.reauth import SIGNED_IN_AT_SESSION_KEY
from accounts.roles import Role
from accounts.tokens import api_token_issue, api_token_revoke
from campusiq.core.models import AuditLogEntry
from tests.accounts.test_sso_tokens import begin, callback, claims, provider, signed  # noqa: F401  (provider: fixture)
from tests.accounts.test_two_factor import code_for, with_two_factor
from tests.factories import LinkedIdentityFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
PAGE = reverse("api_tokens")


def signed_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def issue(client: Client, **fields):
    return client.post(PAGE, {"name": "laptop", "scope": "read", "lifetime_days": 7, **fields})


def key_of(response) -> str:
    match = re.search(r'<input id="issued-key"[^>]*value="([^"]+)"', response.content.decode())
    assert match, response.content.decode()[:2000]
    return match.group(1)


def written() -> tuple[int, int]:
    return ApiToken.objects.count(), AuditLogEntry.objects.count()


def later(minutes: int):
    return time_machine.travel(timezone.now() + datetime.timedelta(minutes=minutes), tick=False)


# --- The list -----------------------------------------------------------------------------------------


def test_the_list_shows_the_persons_own_tokens_and_their_state_never_anyone_elses():
    person, other = UserFactory(), UserFactory()
    active, _ = api_token_issue(user=person, name="laptop", scope=ApiToken.Scope.READ_WRITE)
    revoked, _ = api_token_issue(user=person, name="old phone")
    api_token_revoke(token=revoked, actor=person)
    expired, _ = api_token_issue(user=person, name="workshop", lifetime=datetime.timedelta(days=1))
    ApiToken.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=2), expires_at=timezone.now() - datetime.timedelta(days=1)
    )
    theirs, _ = api_token_issue(user=other, name="someone else's sync")
    page = signed_in(person).get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    rows = {name: re.search(rf'<tr id="token-{token.pk}">(.*?)</tr>', html, re.S) for name, token in
            (("laptop", active), ("old phone", revoked), ("workshop", expired))}  # fmt: skip
    assert all(rows.values()), html
    assert "Active" in rows["laptop"].group(1) and "Read and write" in rows["laptop"].group(1)
    assert f"ciq_{active.prefix}_" in rows["laptop"].group(1) and "Never" in rows["laptop"].group(1)
    assert "Revoked" in rows["old phone"].group(1) and "Revoke</button>" not in rows["old phone"].group(1)
    assert "Expired" in rows["workshop"].group(1)
    assert "someone else" not in html and theirs.prefix not in html and f"token-{theirs.pk}" not in html


def test_the_list_takes_as_many_queries_for_many_tokens_as_for_one():
    person = UserFactory()
    client = signed_in(person)
    api_token_issue(user=person, name="first")
    client.get(PAGE)  # anything done once per process (content types, templates) is done
    with CaptureQueriesContext(connection) as one:
        assert client.get(PAGE).status_code == 200
    for n in range(12):
        token, _ = api_token_issue(user=person, name=f"token {n}")
        if n % 3 == 0:
            api_token_revoke(token=token, actor=person)
    ApiToken.objects.filter(user=person, name="token 1").update(last_used_at=timezone.now())
    with CaptureQueriesContext(connection) as thirteen:
        page = client.get(PAGE)
    assert page.content.decode().count('<tr id="token-') == 13
    assert len(thirteen) == len(one), [q["sql"] for q in thirteen.captured_queries]


def test_the_page_and_its_links_are_there_for_every_signed_in_person_and_not_for_visitors():
    student = StudentFactory()
    assert Client().get(PAGE).status_code == 302
    for user in (student.user, UserFactory(roles=[Role.LECTURER]), UserFactory()):
        client = signed_in(user)
        home = client.get(reverse("home")).content.decode()
        assert f'href="{PAGE}"' in home  # the site's menu (and the home page's "Your account")
        assert client.get(PAGE).status_code == 200
    profile = signed_in(student.user).get(reverse("portal:student-profile")).content.decode()
    assert profile.count(f'href="{PAGE}"') >= 2  # the menu and the profile's own links


# --- Issuing --------------------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_never_stored_cached_or_logged_and_audited(log_output):
    person = UserFactory()
    client = signed_in(person)
    response = issue(client, name="  timetable sync ", scope="read_write", lifetime_days=30)
    assert response.status_code == 201 and not response.has_header("Location")
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    key = key_of(response)
    token = ApiToken.objects.get(user=person)
    assert token.name == "timetable sync" and token.scope == "read_write" and token.kind == "personal"
    assert key.startswith(f"ciq_{token.prefix}_") and token.key_hash != key and key not in token.key_hash
    assert datetime.timedelta(days=29, hours=23) < token.expires_at - token.created_at <= datetime.timedelta(days=30)
    html = response.content.decode()
    assert "readonly" in re.search(r'<input id="issued-key"[^>]*>', html).group(0)
    assert '<label for="issued-key">' in html and 'aria-describedby="issued-key-hint"' in html
    assert html.count(key) == 1
    entry = AuditLogEntry.objects.get(verb="token.created")
    assert entry.actor_id == person.pk and entry.object_id == str(token.pk) and key not in str(entry.changes)
    # Nowhere again: the list, the session, the log.
    assert key not in client.get(PAGE).content.decode()
    assert key not in str(dict(client.session.items()))
    assert key not in log_output.getvalue()


def test_an_sso_account_without_a_password_gets_a_token_here_and_uses_it_on_the_api(client, provider):  # noqa: F811
    sent = begin(client)
    provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": signed(claims(sent["nonce"]))}
    assert callback(client, sent["state"]).status_code == 302
    person = SignedInSession.objects.get().user
    assert person.email == "nia@uni.example" and not person.has_usable_password()
    # The API's token endpoint has no password to take from this person.
    api = APIClient().post("/api/v1/auth/token/", {"email": person.email, "password": ""}, format="json")
    assert api.status_code == 400 and not ApiToken.objects.exists()
    page = client.get(PAGE).content.decode()
    assert "without a CampusIQ password" in page and "Make token" in page
    key = key_of(issue(client, name="phone app"))
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    me = bearer.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["email"] == "nia@uni.example"
    refused = bearer.post("/api/v1/check-ins/", {}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "token_read_only"  # read only, as asked
    assert bearer.delete("/api/v1/auth/token/current/").status_code == 204  # but it may revoke itself
    assert bearer.get("/api/v1/me/").status_code == 401


def test_a_linked_account_with_password_sign_in_off_is_told_why_the_page_is_for_it(settings, monkeypatch, tmp_path):
    from tests.accounts.sso_support import provider_config, sso_configure

    sso_configure(
        settings, monkeypatch, tmp_path, [provider_config("https://login.uni.example", password_sign_in=False)]
    )
    link = LinkedIdentityFactory(user__password="a-long-passphrase-1")
    assert link.user.has_usable_password()
    page = signed_in(link.user).get(PAGE).content.decode()
    assert "without a CampusIQ password" in page
    assert issue(signed_in(link.user)).status_code == 201


def test_a_student_may_make_a_read_write_token_as_the_api_allows_everyone():
    student = StudentFactory()
    assert issue(signed_in(student.user), scope="read_write").status_code == 201
    assert ApiToken.objects.get(user=student.user).scope == ApiToken.Scope.READ_WRITE


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"name": ""}, id="no-name"),
        pytest.param({"name": "   "}, id="blank-name"),
        pytest.param({"name": "x" * 101}, id="name-too-long"),
        pytest.param({"name": "null\x00byte"}, id="name-with-nul"),
        pytest.param({"scope": "admin"}, id="unknown-scope"),
        pytest.param({"scope": ""}, id="no-scope"),
        pytest.param({"lifetime_days": 31}, id="longer-than-personal-tokens-live"),
        pytest.param({"lifetime_days": 365}, id="a-service-accounts-lifetime"),
        pytest.param({"lifetime_days": 0}, id="zero-days"),
        pytest.param({"lifetime_days": -7}, id="negative"),
        pytest.param({"lifetime_days": "a week"}, id="not-a-number"),
        pytest.param({"lifetime_days": "9" * 40}, id="huge-number"),
    ],
)
def test_bad_input_is_a_readable_form_error_and_writes_nothing(fields):
    client = signed_in(UserFactory())
    before = written()
    response = issue(client, **fields)
    html = response.content.decode()
    assert response.status_code == 200 and "Please correct the errors below." in html
    assert 'class="errorlist' in html and "issued-key" not in html
    assert written() == before


def test_a_missing_body_is_a_form_error_too():
    client = signed_in(UserFactory())
    response = client.post(PAGE, {})
    assert response.status_code == 200 and "Please correct the errors below." in response.content.decode()
    assert written() == (0, 0)


def test_the_lifetimes_offered_follow_the_personal_tokens_limit(settings):
    settings.API_TOKEN_MAX_DAYS = {"personal": 14, "service": 365}
    client = signed_in(UserFactory())
    html = client.get(PAGE).content.decode()
    offered = re.findall(r'<option value="(\d+)"', html)
    assert offered == ["1", "7", "14"]
    assert issue(client, lifetime_days=30).status_code == 200 and written() == (0, 0)
    assert issue(client, lifetime_days=14).status_code == 201


def test_issuing_is_limited_per_person(settings):
    settings.API_TOKEN_ISSUE_RATE_PER_USER = "2/h"
    person = UserFactory()
    client = signed_in(person)
    assert [issue(client, name=f"t{n}").status_code for n in range(2)] == [201, 201]
    refused = issue(client, name="third")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "You have made many tokens lately" in refused.content.decode()
    assert ApiToken.objects.filter(user=person).count() == 2
    # Someone else's budget is their own.
    assert issue(signed_in(UserFactory()), name="mine").status_code == 201


# --- A recent sign-in ---------------------------------------------------------------------------------


def test_a_sign_in_older_than_fifteen_minutes_is_refused_and_offered_a_fresh_one():
    person = UserFactory()
    client = signed_in(person)
    with later(14):
        assert issue(client, name="in time").status_code == 201
    with later(16):
        page = client.get(PAGE)
        html = page.content.decode()
        assert page.status_code == 200 and "Make token" not in html and "15 minutes" in html
        again = re.search(r'<a class="button" href="([^"]+)">Sign in again</a>', html).group(1).replace("&amp;", "&")
        assert again == f"{reverse('login')}?next=%2Faccounts%2Ftokens%2F&reauth=1"
        before = written()
        refused = issue(client, name="too late")
        assert refused.status_code == 403 and "Sign in again" in refused.content.decode()
        assert written() == before
        # Signing in again (the sign-in page shows its form to a signed-in person) opens issuing anew.
        form = client.get(again)
        assert form.status_code == 200 and "Sign in again" in form.content.decode()
        assert f'value="{person.email}"' in form.content.decode()
        done = client.post(again, {"username": person.email, "password": PASSWORD, "next": PAGE})
        assert done.status_code == 302 and done["Location"] == PAGE
        assert issue(client, name="after signing in again").status_code == 201


def test_a_wrong_password_when_signing_in_again_keeps_the_session_and_issues_nothing():
    person = UserFactory()
    client = signed_in(person)
    with later(20):
        wrong = client.post(f"{reverse('login')}?reauth=1", {"username": person.email, "password": "nope"})
        assert wrong.status_code == 200 and int(client.session[SESSION_KEY]) == person.pk
        assert issue(client).status_code == 403 and written() == (0, 0)


def test_a_session_whose_sign_in_time_was_not_recorded_counts_as_stale():
    client = signed_in(UserFactory())
    session = client.session
    assert isinstance(session[SIGNED_IN_AT_SESSION_KEY], float)
    del session[SIGNED_IN_AT_SESSION_KEY]  # as a session signed in before the time was kept
    session.save()
    assert issue(client).status_code == 403 and written() == (0, 0)


def test_signing_in_again_as_the_same_person_in_the_same_session_counts_as_a_new_sign_in():
    """Django keeps the session (and its key) when the person signed in is the one signing in again:
    the time of the sign-in is still the new one's."""
    person = UserFactory()
    client = signed_in(person)
    key = client.session.session_key
    with later(20):
        client.post(f"{reverse('login')}?reauth=1", {"username": person.email, "password": PASSWORD})
        assert client.session.session_key == key and issue(client).status_code == 201


def test_without_reauth_the_sign_in_page_still_sends_a_signed_in_person_on():
    client = signed_in(UserFactory())
    assert client.get(f"{reverse('login')}?next={PAGE}").status_code == 302


def test_an_sso_user_signs_in_again_at_the_provider_which_is_asked_to_check_them_anew(client, provider):  # noqa: F811
    sent = begin(client)
    provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": signed(claims(sent["nonce"]))}
    assert callback(client, sent["state"]).status_code == 302
    with later(30):
        assert issue(client).status_code == 403
        again = re.search(r'href="([^"]+)">Sign in again</a>', client.get(PAGE).content.decode()).group(1)
        login = client.get(again.replace("&amp;", "&")).content.decode()
        button = re.search(r'href="(/accounts/sso/campus/login/[^"]+)"', login).group(1).replace("&amp;", "&")
        assert button == f"/accounts/sso/campus/login/?next={PAGE}&reauth=1"
        to_provider = client.get(button)
        assert to_provider.status_code == 302 and "prompt=login" in to_provider["Location"]
        nonce = re.search(r"nonce=([^&]+)", to_provider["Location"]).group(1)
        state = re.search(r"state=([^&]+)", to_provider["Location"]).group(1)
        provider["token"] = {"access_token": "at", "token_type": "Bearer", "id_token": signed(claims(nonce))}
        back = callback(client, state)
        assert back.status_code == 302 and back["Location"] == PAGE
        assert issue(client).status_code == 201
    # An ordinary sign-in does not ask the provider to check the person again.
    assert "prompt=" not in client.get("/accounts/sso/campus/login/")["Location"]


def test_with_two_factor_on_signing_in_again_takes_the_code_too():
    lecturer = UserFactory(roles=[Role.LECTURER])
    device = with_two_factor(lecturer)
    client = Client()
    client.post(reverse("login"), {"username": lecturer.email, "password": PASSWORD})
    client.post(reverse("login_code"), {"code": code_for(device, steps_ahead=1)})  # the set-up used this step's
    assert client.session.get(SESSION_KEY) == str(lecturer.pk)
    assert issue(client).status_code == 201
    with later(20):
        assert issue(client).status_code == 403
        again = f"{reverse('login')}?next={PAGE}&reauth=1"
        step = client.post(again, {"username": lecturer.email, "password": PASSWORD, "next": PAGE})
        assert step.status_code == 302 and step["Location"] == reverse("login_code")
        assert SESSION_KEY not in client.session  # nobody is signed in until the code is given
        done = client.post(reverse("login_code"), {"code": code_for(device)})  # 20 minutes on: a fresh code
        assert done.status_code == 302 and done["Location"] == PAGE
        assert issue(client).status_code == 201


def test_a_session_of_someone_with_two_factor_that_showed_no_code_is_asked_for_one():
    lecturer = UserFactory(roles=[Role.LECTURER])
    with_two_factor(lecturer)
    client = signed_in(lecturer)  # as a campus provider's sign-in without multi-factor would leave it
    html = client.get(PAGE).content.decode()
    assert "Enter your code" in html and f"{reverse('login_code')}?next=" in html
    assert issue(client).status_code == 403 and not ApiToken.objects.exists()


def test_where_two_factor_is_required_staff_without_it_get_no_token(settings):
    settings.ADMIN_REQUIRE_TWO_FACTOR = True
    registrar = UserFactory(roles=[Role.REGISTRAR])
    client = signed_in(registrar)
    assert "Set up two-factor sign-in" in client.get(PAGE).content.decode()
    assert issue(client).status_code == 403 and not ApiToken.objects.exists()
    assert issue(signed_in(StudentFactory().user)).status_code == 201  # students are not asked


# --- Revoking -------------------------------------------------------------------------------------------


def test_a_person_revokes_their_own_token_and_another_persons_is_not_found():
    person, other = UserFactory(), UserFactory()
    mine, my_key = api_token_issue(user=person, name="mine")
    theirs, their_key = api_token_issue(user=other, name="theirs")
    client = signed_in(person)
    assert client.post(reverse("api_token_revoke", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("api_token_revoke", args=[theirs.pk + 1000])).status_code == 404
    assert client.get(reverse("api_token_revoke", args=[mine.pk])).status_code == 405
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and not AuditLogEntry.objects.filter(verb="token.revoked").exists()
    done = client.post(reverse("api_token_revoke", args=[mine.pk]), follow=True)
    assert done.redirect_chain == [(PAGE, 302)] and "is revoked" in done.content.decode()
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    entry = AuditLogEntry.objects.get(verb="token.revoked")
    assert entry.actor_id == person.pk and entry.object_id == str(mine.pk)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {my_key}")
    assert api.get("/api/v1/me/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {their_key}")
    assert api.get("/api/v1/me/").status_code == 200
    # Again: nothing more happens, and nothing more is audited.
    assert client.post(reverse("api_token_revoke", args=[mine.pk])).status_code == 302
    assert AuditLogEntry.objects.filter(verb="token.revoked").count() == 1


def test_revoking_needs_no_recent_sign_in_but_a_csrf_token():
    person = UserFactory()
    token, _ = api_token_issue(user=person, name="mine")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(person)
    with later(60):
        assert strict.post(reverse("api_token_revoke", args=[token.pk])).status_code == 403
        token.refresh_from_db()
        assert token.revoked_at is None
        page = strict.get(PAGE).content.decode()
        csrf = re.search(rf'action="/accounts/tokens/{token.pk}/revoke/".*?name="csrfmiddlewaretoken" value="([^"]+)"',
                         page, re.S).group(1)  # fmt: skip
        assert (
            strict.post(reverse("api_token_revoke", args=[token.pk]), {"csrfmiddlewaretoken": csrf}).status_code == 302
        )
        token.refresh_from_db()
        assert token.revoked_at is not None
