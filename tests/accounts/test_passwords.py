"""Password rules, wherever a password is chosen: the portal's change page and the admin's pages."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"
EMAIL = "rosalind.franklin@campus.example"

# Each refused for one reason only (checked below), with the message a person reads.
REFUSED = {
    "common": ("iloveyou123", "This password is too common."),
    "short": ("Zq8#kd!", "This password is too short. It must contain at least 10 characters."),
    "numeric": ("4829105738261", "This password is entirely numeric."),
    "similar to the email": ("franklin.rosalind@campus", "The password is too similar to the email address."),
}


@pytest.fixture
def rosalind(db):
    return UserFactory(email=EMAIL, first_name="Rosalind", last_name="Franklin", roles=[Role.LECTURER])


@pytest.mark.parametrize("reason", REFUSED)
def test_the_portal_refuses_a_weak_new_password(rosalind, reason):
    password, message = REFUSED[reason]
    client = Client()
    client.force_login(rosalind)
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": password, "new_password2": password}
    )
    assert response.status_code == 200 and message in response.content.decode()
    rosalind.refresh_from_db()
    assert rosalind.check_password(PASSWORD)


@pytest.mark.parametrize("reason", REFUSED)
def test_the_admin_refuses_a_weak_password_it_sets(rosalind, reason):
    password, message = REFUSED[reason]
    client = Client()
    client.force_login(UserFactory(roles=[Role.ADMIN]))
    response = client.post(
        f"/admin/accounts/user/{rosalind.pk}/password/",
        {"password1": password, "password2": password, "usable_password": "true"},
    )
    assert response.status_code == 200 and message in response.content.decode()
    rosalind.refresh_from_db()
    assert rosalind.check_password(PASSWORD)


@pytest.mark.parametrize("reason", ["common", "short", "numeric"])
def test_the_admin_refuses_a_weak_password_for_a_new_account(reason):
    password, message = REFUSED[reason]
    client = Client()
    client.force_login(UserFactory(roles=[Role.ADMIN]))
    data = {"email": "new.person@campus.example", "password1": password, "password2": password}
    response = client.post("/admin/accounts/user/add/", data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not User.objects.filter(email="new.person@campus.example").exists()


def test_each_example_breaks_one_rule_only(rosalind):
    from django.contrib.auth.password_validation import get_default_password_validators
    from django.core.exceptions import ValidationError

    for reason, (password, _message) in REFUSED.items():
        broken = []
        for validator in get_default_password_validators():
            try:
                validator.validate(password, rosalind)
            except ValidationError:
                broken.append(type(validator).__name__)
        assert len(broken) == 1, (reason, broken)


def test_a_strong_password_is_taken_in_the_portal(rosalind):
    client = Client()
    client.force_login(rosalind)
    new = "helix-photograph-51-kings"
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    rosalind.refresh_from_db()
    assert rosalind.check_password(new)
