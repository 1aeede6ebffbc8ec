"""Signing in with an email, signing out, changing and resetting a password through the portal."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"
NEW_PASSWORD = "a-much-longer-new-passphrase-42"


def signed_in_user_id(client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def test_sign_in_with_email_and_password_goes_to_the_page_asked_for():
    user = UserFactory(email="ana@campus.example", roles=[Role.STUDENT])
    client = Client()
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert '<label for="id_username">' in page.content.decode() and 'autocomplete="current-password"' in (
        page.content.decode()
    )
    response = client.post(
        reverse("login"), {"username": "ANA@campus.example", "password": PASSWORD, "next": "/portal/student/"}
    )
    assert response.status_code == 302 and response["Location"] == "/portal/student/"
    assert signed_in_user_id(client) == user.pk


def test_wrong_password_shows_an_error_and_signs_nobody_in():
    UserFactory(email="ana@campus.example")
    client = Client()
    response = client.post(reverse("login"), {"username": "ana@campus.example", "password": "wrong"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page and "correct email address and password" in page
    assert signed_in_user_id(client) is None


def test_service_accounts_cannot_sign_in():
    UserFactory(email="reader@campus.example", is_service_account=True)
    client = Client()
    client.post(reverse("login"), {"username": "reader@campus.example", "password": PASSWORD})
    assert signed_in_user_id(client) is None


def test_failed_sign_ins_are_throttled_with_a_clear_message():
    UserFactory(email="ana@campus.example")
    client = Client()
    for _ in range(5):
        client.post(reverse("login"), {"username": "ana@campus.example", "password": "guess"})
    response = client.post(reverse("login"), {"username": "Ana@campus.example", "password": PASSWORD})
    assert response.status_code == 429 and "Try again in" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_successful_sign_ins_are_not_throttled():
    """Only failures count: signing in again and again never locks the person out."""
    user = UserFactory(email="ana@campus.example")
    for _ in range(15):
        client = Client()
        client.post(reverse("login"), {"username": "ana@campus.example", "password": PASSWORD})
        assert signed_in_user_id(client) == user.pk


def test_signed_in_user_visiting_sign_in_goes_home(user):
    client = Client()
    client.force_login(user)
    response = client.get(reverse("login"))
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_sign_out_needs_a_post(user):
    client = Client()
    client.force_login(user)
    assert client.get(reverse("logout")).status_code == 405
    assert signed_in_user_id(client) == user.pk
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert signed_in_user_id(client) is None


def test_the_header_signs_out_with_a_form_and_a_csrf_token(user):
    client = Client()
    client.force_login(user)
    page = client.get("/").content.decode()
    assert re.search(rf'<form method="post" action="{reverse("logout")}"', page)
    assert "csrfmiddlewaretoken" in page


def test_password_change_needs_sign_in(client):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_password_change_flow(user):
    client = Client()
    client.force_login(user)
    page = client.get(reverse("password_change")).content.decode()
    for field in ("id_old_password", "id_new_password1", "id_new_password2"):
        assert f'<label for="{field}">' in page
    refused = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert refused.status_code == 200 and 'aria-invalid="true"' in refused.content.decode()
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("password_change_done")
    assert "Your password has been changed." in response.content.decode()
    assert signed_in_user_id(client) == user.pk  # still signed in
    assert Client().login(username=user.email, password=NEW_PASSWORD)
    assert not Client().login(username=user.email, password=PASSWORD)


def test_a_short_new_password_is_refused(user):
    client = Client()
    client.force_login(user)
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"}
    )
    assert response.status_code == 200 and "too short" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def reset_link(message) -> str:
    return re.search(r"https?://testserver(/accounts/password/reset/\S+/)", message.body).group(1)


def test_password_reset_flow(mailoutbox):
    user = UserFactory(email="ana@campus.example")
    client = Client()
    assert client.get(reverse("password_reset")).status_code == 200
    response = client.post(reverse("password_reset"), {"email": "Ana@Campus.example"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ana@campus.example"]
    assert message.subject == "Choose your CampusIQ password"
    assert "ana@campus.example" in message.body
    link = reset_link(message)
    # Django swaps the token for a session key and redirects to the form.
    response = client.get(link, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Choose a new password" in page and '<label for="id_new_password1">' in page
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("password_reset_complete")
    # The new password signs in through the form; the link is spent.
    signed = Client()
    signed.post(reverse("login"), {"username": "ana@campus.example", "password": NEW_PASSWORD})
    assert signed_in_user_id(signed) == user.pk
    again = Client().get(link, follow=True).content.decode()
    assert "This link is not valid any more" in again


def test_password_reset_lets_someone_without_a_password_choose_their_first(mailoutbox):
    user = UserFactory(email="new.student@campus.example")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    Client().post(reverse("password_reset"), {"email": "new.student@campus.example"})
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("email", ["nobody@campus.example", "reader@campus.example", "gone@campus.example"])
def test_password_reset_sends_nothing_to_unknown_inactive_or_service_accounts(mailoutbox, email):
    UserFactory(email="reader@campus.example", is_service_account=True)
    UserFactory(email="gone@campus.example", is_active=False)
    response = Client().post(reverse("password_reset"), {"email": email})
    # The same answer whether or not the address has an account: no one learns who studies here.
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert mailoutbox == []


def test_password_reset_requests_are_rate_limited(mailoutbox):
    UserFactory(email="ana@campus.example")
    client = Client()
    for _ in range(3):
        client.post(reverse("password_reset"), {"email": "ana@campus.example"})
    response = client.post(reverse("password_reset"), {"email": "ana@campus.example"})
    assert response.status_code == 429
    assert len(mailoutbox) == 3


def test_every_step_renders_our_template_not_the_admins(user):
    pages = [reverse("password_reset"), reverse("password_reset_done"), reverse("password_reset_complete")]
    for url in pages:
        page = Client().get(url).content.decode()
        assert "CampusIQ" in page and "site-header" in page, url
    invalid = Client().get(reverse("password_reset_confirm", kwargs={"uidb64": "MQ", "token": "bad-token"}))
    assert "This link is not valid any more" in invalid.content.decode()
    client = Client()
    client.force_login(user)
    assert "site-header" in client.get(reverse("password_change_done")).content.decode()


def test_user_model_signs_in_by_email():
    assert User.USERNAME_FIELD == "email"
