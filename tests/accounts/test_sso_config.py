"""SSO_CONFIG_FILE is checked when CampusIQ starts: each mistake a campus can make stops the start with
a message naming the provider and the setting, never a failed sign-in later."""

import json

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.roles import Role
from accounts.sso.config import sso_providers_load
from tests.accounts.metadata_support import key_pair
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


def saml_config(**overrides) -> dict:
    return {"slug": "campus-saml", "name": "Universidade Exemplo (SAML)", "protocol": "saml",
            "issuer": "https://idp.uni.example/idp", **overrides}  # fmt: skip


def test_saml_metadata_from_a_url_names_the_certificate_it_is_signed_with(tmp_path, monkeypatch):
    federation = key_pair(tmp_path, "federation")
    url = "https://md.federation.example/idp.xml"
    providers = load(tmp_path, monkeypatch, saml_config(idp_metadata=url, idp_metadata_cert=str(federation.cert),
                                                        metadata_refresh_hours=24))  # fmt: skip
    campus = providers["campus-saml"]
    assert (campus.idp_metadata, campus.idp_metadata_cert, campus.metadata_refresh_hours) == (
        url, str(federation.cert), 24)  # fmt: skip
    assert campus.idp_metadata_remote
    # A file the operator placed needs none; its hours default to 6.
    placed = load(tmp_path, monkeypatch, saml_config(idp_metadata="/etc/campusiq/idp.xml"))["campus-saml"]
    assert (placed.idp_metadata_cert, placed.metadata_refresh_hours, placed.idp_metadata_remote) == ("", 6, False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"idp_metadata_cert": ""}, "idp_metadata_cert is required for metadata read from a URL"),
        ({"idp_metadata_cert": "/nonexistent/federation.crt"}, "idp_metadata_cert /nonexistent/federation.crt: not a"),
        ({"idp_metadata_cert": "{not_pem}"}, "idp_metadata_cert .*federation.txt: not a readable PEM certificate"),
        ({"idp_metadata_cert": ["a.crt"]}, "idp_metadata_cert must be a file path"),
        ({"idp_metadata": "http://md.federation.example/idp.xml"}, "idp_metadata must be a file path or an https://"),
        ({"metadata_refresh_hours": 0}, "metadata_refresh_hours must be a whole number from 1 to 168"),
        ({"metadata_refresh_hours": 169}, "metadata_refresh_hours must be"),
        ({"metadata_refresh_hours": "6"}, "metadata_refresh_hours must be"),
        ({"metadata_refresh_hours": True}, "metadata_refresh_hours must be"),
    ],
)
def test_a_saml_metadata_mistake_stops_the_start_naming_the_provider_and_the_field(tmp_path, monkeypatch, change,
                                                                                    message):  # fmt: skip
    federation = key_pair(tmp_path, "federation")
    not_pem = tmp_path / "federation.txt"
    not_pem.write_text("not a certificate")
    config = saml_config(idp_metadata="https://md.federation.example/idp.xml", idp_metadata_cert=str(federation.cert))
    config.update({key: str(not_pem) if value == "{not_pem}" else value for key, value in change.items()})
    with pytest.raises(ImproperlyConfigured, match=f"SSO provider campus-saml: {message}"):
        load(tmp_path, monkeypatch, config)
