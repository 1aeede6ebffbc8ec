import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_email_is_the_login_and_case_insensitive():
    user = User.objects.create_user("Lecturer@Campus.Example", password="a-long-password-1")
    assert user.email == "lecturer@campus.example"
    assert authenticate(username="LECTURER@campus.example", password="a-long-password-1") == user


def test_email_unique_regardless_of_case():
    User.objects.create_user("one@campus.example")
    with pytest.raises(IntegrityError):
        User.objects.create(email="ONE@campus.example")


def test_email_required():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("")


def test_superuser_flags():
    admin = User.objects.create_superuser("root@campus.example", password="a-long-password-1")
    assert admin.is_staff and admin.is_superuser
    with pytest.raises(ValueError):
        User.objects.create_superuser("x@campus.example", is_staff=False)


def test_str_prefers_name():
    assert str(User(email="a@b.c", first_name="Ana", last_name="Silva")) == "Ana Silva"
    assert str(User(email="a@b.c")) == "a@b.c"


def test_admin_can_add_a_user(admin_client):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {"email": "new@campus.example", "password1": "Xq7!long-enough-pass", "password2": "Xq7!long-enough-pass"},
    )
    assert response.status_code == 302
    assert User.objects.filter(email="new@campus.example").exists()
