"""SSO_CONFIG_FILE is checked when CampusIQ starts: each mistake a campus can make stops the start with
a message naming the provider and the setting, never a failed sign-in later."""

import json

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.roles import Role
from accounts.sso.config import sso_providers_load
from tests.accounts.sso_support import provider_config


def load(tmp_path, monkeypatch, *providers, secret="s" * 32):
    if secret:
        monkeypatch.setenv("SSO_TEST_CLIENT_SECRET", secret)
    else:
        monkeypatch.delenv("SSO_TEST_CLIENT_SECRET", raising=False)
    path = tmp_path / "sso.json"
    path.write_text(json.dumps({"providers": list(providers)}))
    return sso_providers_load(str(path), environ.Env())


def test_a_good_file_gives_each_provider_with_its_roles_and_domains(tmp_path, monkeypatch):
    providers = load(tmp_path, monkeypatch, provider_config("https://login.uni.example/"))
    campus = providers["campus"]
    assert campus.issuer == "https://login.uni.example"
    assert campus.discovery_url == "https://login.uni.example/.well-known/openid-configuration"
    assert campus.managed_roles == {Role.STUDENT, Role.LECTURER} and campus.email_domain_allowed("A@UNI.example")
    assert not campus.email_domain_allowed("a@uni.example.evil.test")


def test_no_file_means_no_providers():
    assert sso_providers_load("", environ.Env()) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slug": "Campus One"}, "slug must be"),
        ({"protocol": "cas"}, "protocol must be"),
        ({"client_id": ""}, "client_id is required"),
        ({"roles": {"staff": "dean"}}, "role 'dean'"),
        ({"link_existing_by": ["name"]}, "link_existing_by may name"),
        ({"email_domains": []}, "needs the email_domains"),
    ],
)
def test_a_mistake_stops_the_start_naming_what_is_wrong(tmp_path, monkeypatch, change, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load(tmp_path, monkeypatch, provider_config("https://login.uni.example", **change))


def test_a_missing_secret_or_a_broken_file_or_two_providers_with_one_slug_stop_it_too(tmp_path, monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SSO_TEST_CLIENT_SECRET is not set"):
        load(tmp_path, monkeypatch, provider_config("https://a.example"), secret="")
    with pytest.raises(ImproperlyConfigured, match="same slug"):
        load(tmp_path, monkeypatch, provider_config("https://a.example"), provider_config("https://b.example"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ImproperlyConfigured, match="SSO_CONFIG_FILE"):
        sso_providers_load(str(broken), environ.Env())
