"""A SAML provider's metadata from a URL: fetched over HTTPS (a loopback server with its own certificate),
its signature checked by xmlsec1 against the configured certificate with real keys made here, kept in the
database and read by sign-ins, which no longer fetch. Tampered, unsigned, foreign-signed, expired,
wrapped and other-entity documents are refused and the last good copy kept; a provider that is down or
slow is given up on in bounded time; the task and the command refresh only what is due."""

import datetime
import hashlib
import json
import os
import time
from types import SimpleNamespace

import pytest
import requests
import time_machine
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.metrics import saml_metadata_metrics
from accounts.models import LinkedIdentity, SamlMetadata, User
from accounts.sso import metadata
from accounts.sso.config import sso_providers
from accounts.sso.metadata import saml_metadata_refresh, saml_metadata_refresh_due
from accounts.tasks import sso_metadata_refresh
from tests.accounts.metadata_support import MetadataServer, idp_metadata, key_pair, signed
from tests.accounts.sso_support import SAML_PEOPLE, SAML_SLUG, saml_provider_config, saml_sign_in, sso_configure
from tests.support.identity_providers import SamlIdp
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

ENTITY = "https://idp.uni.example/idp"
IN_A_WEEK = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(days=7)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metadata-keys")
    return SimpleNamespace(
        federation=key_pair(folder, "federation"), other=key_pair(folder, "other"),
        tls=key_pair(folder, "tls", ip="127.0.0.1"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def https_server(keys):
    server = MetadataServer(keys.tls)
    yield server
    server.stop()


@pytest.fixture
def federation(https_server, keys, monkeypatch):
    """The federation's metadata server, trusted by `requests` as a campus CA would be."""
    https_server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(keys.tls.cert))
    return https_server


@pytest.fixture
def good(keys) -> bytes:
    return signed(idp_metadata(ENTITY), keys.federation, valid_until=IN_A_WEEK)


@pytest.fixture
def configure(settings, monkeypatch, tmp_path, federation, keys):
    def configure(**overrides):
        config = {"slug": SAML_SLUG, "name": "Universidade Exemplo (SAML)", "protocol": "saml", "issuer": ENTITY,
                  "idp_metadata": federation.url("/idp.xml"), "idp_metadata_cert": str(keys.federation.cert),
                  "timeout_seconds": 1, **overrides}  # fmt: skip
        sso_configure(settings, monkeypatch, tmp_path, [config])
        return sso_providers()[SAML_SLUG]

    return configure


@pytest.fixture
def campus(configure, federation, good):
    federation.documents["/idp.xml"] = good
    return configure()


def signs_in_at_the_idp(client) -> bool:
    answer = client.get(f"/accounts/sso/{SAML_SLUG}/login/")
    if answer.status_code == 302:
        assert answer["Location"].startswith("https://idp.uni.example/sso?SAMLRequest="), answer["Location"]
        return True
    assert answer.status_code == 503 and b"cannot be reached" in answer.content, answer.status_code
    return False


def refreshes_counted(outcome: str) -> float:
    labels = {"provider": SAML_SLUG, "outcome": outcome}
    return REGISTRY.get_sample_value("campusiq_saml_metadata_refreshes_total", labels) or 0.0


def test_signed_metadata_is_fetched_checked_and_stored_and_sign_ins_read_the_copy(campus, federation, good, client):
    refresh = saml_metadata_refresh(provider=campus)
    assert refresh.outcome == "stored"
    stored = SamlMetadata.objects.get(provider=SAML_SLUG)
    assert stored.sha256 == hashlib.sha256(good).hexdigest() and stored.xml == good.decode()
    assert stored.valid_until == IN_A_WEEK and stored.source == campus.idp_metadata
    assert timezone.now() - stored.fetched_at < datetime.timedelta(minutes=1)
    assert signs_in_at_the_idp(client) and signs_in_at_the_idp(client)
    assert federation.hits == 1  # sign-ins never fetch


def tampered(keys, good: bytes) -> bytes:
    at = good.index(b"idp.uni.example/sso") + len("idp.uni.example/ss")
    return good[:at] + b"x" + good[at + 1 :]  # one byte changed after signing


def wrapped(keys, good: bytes) -> bytes:
    """The genuine signature on a root of the attacker's: it covers only the genuine entity within."""
    text = good.decode()
    signature = text[text.index("<ds:Signature") : text.index("</ds:Signature>") + len("</ds:Signature>")]
    genuine = text[text.index("<md:EntityDescriptor") :].replace(signature, "")
    evil = idp_metadata(ENTITY).replace("https://idp.uni.example/sso", "https://evil.example/sso")
    head, _, tail = evil.partition(f'entityID="{ENTITY}">')
    return (f'{head}entityID="{ENTITY}" ID="_evil">{signature}<md:Extensions>{genuine}</md:Extensions>{tail}').encode()


def unsigned(keys, good: bytes) -> bytes:
    return idp_metadata(ENTITY).encode()


def signed_by_another_key(keys, good: bytes) -> bytes:
    return signed(idp_metadata(ENTITY), keys.other)


def expired(keys, good: bytes) -> bytes:
    return signed(idp_metadata(ENTITY), keys.federation, valid_until=timezone.now() - datetime.timedelta(hours=1))


def another_entity(keys, good: bytes) -> bytes:
    return signed(idp_metadata("https://idp.elsewhere.example/idp"), keys.federation)


def an_sp(keys, good: bytes) -> bytes:
    return signed(idp_metadata(ENTITY, role="SPSSODescriptor"), keys.federation)


def not_xml(keys, good: bytes) -> bytes:
    return b"<html>maintenance</html>"


BAD_DOCUMENTS = {
    "tampered": (tampered, "signature_invalid"),
    "unsigned": (unsigned, "unsigned"),
    "signed by another key": (signed_by_another_key, "signature_invalid"),
    "expired": (expired, "expired"),
    "another entity": (another_entity, "entity_missing"),
    "an SP, not an IdP": (an_sp, "not_an_idp"),
    "a wrapped signature": (wrapped, "signature_not_over_document"),
    "not XML": (not_xml, "malformed"),
}


@pytest.mark.parametrize("case", BAD_DOCUMENTS)
def test_a_bad_document_is_refused_and_the_last_good_copy_stays(campus, federation, keys, good, client, log_output,
                                                                 case):  # fmt: skip
    saml_metadata_refresh(provider=campus)
    make, reason = BAD_DOCUMENTS[case]
    federation.documents["/idp.xml"] = make(keys, good)
    counted = refreshes_counted(reason)
    refresh = saml_metadata_refresh(provider=campus, force=True)
    assert refresh.outcome == "failed" and refresh.reason.startswith(reason), refresh.reason
    kept = SamlMetadata.objects.get(provider=SAML_SLUG)
    assert kept.sha256 == hashlib.sha256(good).hexdigest() and kept.xml == good.decode()
    assert kept.failed_at is not None and kept.failure.startswith(reason)
    [line] = [json.loads(line) for line in log_output.getvalue().splitlines() if "saml_metadata_refresh_failed" in line]
    assert line["provider"] == SAML_SLUG and line["reason"] == reason and line["level"] == "warning"
    assert refreshes_counted(reason) == counted + 1
    assert signs_in_at_the_idp(client)  # with the kept copy
    federation.documents["/idp.xml"] = good
    assert saml_metadata_refresh(provider=campus, force=True).outcome == "unchanged"
    assert SamlMetadata.objects.get(provider=SAML_SLUG).failed_at is None


@pytest.mark.parametrize(
    ("trouble", "reason"),
    [("down", "unreachable"), ("slow", "unreachable"), ("stalling", "unreachable"), ("dribbling", "too_slow"),
     ("missing", "http_status"), ("huge", "too_large")],
)  # fmt: skip
def test_a_provider_down_or_slow_is_given_up_on_in_bounded_time_and_the_copy_kept(
    campus, configure, federation, monkeypatch, trouble, reason
):
    saml_metadata_refresh(provider=campus)
    provider = campus
    if trouble == "down":
        provider = configure(idp_metadata=f"https://127.0.0.1:{free_port()}/idp.xml")
    elif trouble == "slow":
        federation.delay = 10  # answers long after the provider's timeout (1 s)
    elif trouble == "stalling":
        federation.dribble = 10  # the headers, then a byte 10 s later
    elif trouble == "dribbling":
        federation.dribble = 0.2  # a byte now and then: each read is quick, the whole never ends
    elif trouble == "missing":
        federation.documents.clear()
    else:
        monkeypatch.setattr(metadata, "MAX_BYTES", 100)
    started = time.monotonic()
    refresh = saml_metadata_refresh(provider=provider, force=True)
    assert time.monotonic() - started < 3
    assert refresh.outcome == "failed" and refresh.reason.startswith(reason), refresh.reason
    assert SamlMetadata.objects.filter(provider=SAML_SLUG).exists()


def test_the_first_sign_in_with_no_copy_yet_fetches_once_and_stores_it(campus, federation, client):
    assert signs_in_at_the_idp(client) and signs_in_at_the_idp(client)
    assert federation.hits == 1 and SamlMetadata.objects.filter(provider=SAML_SLUG).exists()


def test_with_no_copy_and_the_provider_down_sign_ins_answer_503_and_do_not_each_wait_for_it(campus, federation,
                                                                                          good, client):  # fmt: skip
    federation.documents.clear()
    assert not signs_in_at_the_idp(client)
    assert not signs_in_at_the_idp(client)
    assert federation.hits == 1  # the second waited for no fetch: one is tried again a minute later
    cache.clear()
    federation.documents["/idp.xml"] = good
    assert signs_in_at_the_idp(client)


def test_an_expired_copy_is_refused(campus, federation, good, client):
    saml_metadata_refresh(provider=campus)
    SamlMetadata.objects.update(valid_until=timezone.now() - datetime.timedelta(minutes=1))
    federation.documents.clear()
    assert not signs_in_at_the_idp(client)
    cache.clear()
    federation.documents["/idp.xml"] = good
    assert signs_in_at_the_idp(client)
    assert SamlMetadata.objects.get().valid_until == IN_A_WEEK


def test_a_copy_from_another_url_or_checked_against_another_certificate_is_not_used(campus, configure, federation,
                                                                                   keys, good, client):  # fmt: skip
    saml_metadata_refresh(provider=campus)
    federation.documents["/new.xml"] = good
    configure(idp_metadata=federation.url("/new.xml"))
    assert signs_in_at_the_idp(client) and federation.hits == 2
    assert SamlMetadata.objects.get().source.endswith("/new.xml")
    federation.documents["/new.xml"] = signed(idp_metadata(ENTITY), keys.other)
    configure(idp_metadata=federation.url("/new.xml"), idp_metadata_cert=str(keys.other.cert))
    assert signs_in_at_the_idp(client) and federation.hits == 3


def test_the_task_is_idempotent_and_refreshes_only_copies_older_than_the_providers_hours(campus, configure,
                                                                                        federation):  # fmt: skip
    assert sso_metadata_refresh.delay().get() == {SAML_SLUG: "stored"}
    assert sso_metadata_refresh.delay().get() == {SAML_SLUG: "fresh"} and federation.hits == 1
    SamlMetadata.objects.update(fetched_at=timezone.now() - datetime.timedelta(hours=7))
    configure(metadata_refresh_hours=12)
    assert sso_metadata_refresh.delay().get() == {SAML_SLUG: "fresh"} and federation.hits == 1
    configure()  # every 6 hours, the default
    assert sso_metadata_refresh.delay().get() == {SAML_SLUG: "unchanged"} and federation.hits == 2


def test_the_task_is_on_the_beat_schedule(settings):
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "accounts.sso_metadata_refresh"]
    assert entry["schedule"].hour == set(range(24))  # hourly: the shortest metadata_refresh_hours is 1


def test_the_command_says_what_it_did_and_fails_when_a_refresh_failed(campus, federation, keys, good, capsys):
    call_command("sso_metadata_refresh")
    assert f"{SAML_SLUG}: stored a new copy: sha256 {hashlib.sha256(good).hexdigest()}" in capsys.readouterr().out
    call_command("sso_metadata_refresh", "--provider", SAML_SLUG)
    assert f"{SAML_SLUG}: fresh, skipped" in capsys.readouterr().out
    call_command("sso_metadata_refresh", "--force")
    assert "fetched again, unchanged" in capsys.readouterr().out
    federation.documents["/idp.xml"] = tampered(keys, good)
    with pytest.raises(CommandError, match=f"Refresh failed for {SAML_SLUG}"):
        call_command("sso_metadata_refresh", "--force")
    assert "failed (signature_invalid); kept the copy fetched" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No SAML provider 'nope'"):
        call_command("sso_metadata_refresh", "--provider", "nope")


def test_a_metadata_file_given_a_certificate_is_checked_too(configure, keys, good, tmp_path, client):
    path = tmp_path / "idp-metadata.xml"
    path.write_bytes(good)
    configure(idp_metadata=str(path))
    assert signs_in_at_the_idp(client)
    path.write_bytes(tampered(keys, good))
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert not signs_in_at_the_idp(client)
    assert not SamlMetadata.objects.exists()  # a file is read where the operator put it
    path.write_bytes(good)
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert signs_in_at_the_idp(client)
    with time_machine.travel(IN_A_WEEK + datetime.timedelta(minutes=1)):  # checked before, expired since
        assert not signs_in_at_the_idp(client)


def test_the_stored_copy_is_measured_at_scrape_time(campus):
    saml_metadata_refresh(provider=campus)
    stored = SamlMetadata.objects.get()
    fetched, valid_until = saml_metadata_metrics()
    assert [sample.value for sample in fetched.samples] == [stored.fetched_at.timestamp()]
    assert [sample.value for sample in valid_until.samples] == [IN_A_WEEK.timestamp()]


def test_the_stored_copy_is_shown_read_only_in_the_admin(campus, staff_user, client):
    saml_metadata_refresh(provider=campus)
    stored = SamlMetadata.objects.get()
    client.force_login(staff_user)
    listing = client.get("/admin/accounts/samlmetadata/")
    assert listing.status_code == 200 and stored.sha256 in listing.text
    page = client.get(f"/admin/accounts/samlmetadata/{stored.pk}/change/")
    assert page.status_code == 200 and stored.source in page.text and 'name="_save"' not in page.text
    assert client.get("/admin/accounts/samlmetadata/add/").status_code == 403


# --- Against a real IdP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simplesamlphp(live_server, tmp_path_factory):
    sp = f"{live_server.url}/accounts/sso/{SAML_SLUG}"
    idp = SamlIdp(root=tmp_path_factory.mktemp("saml-idp-metadata"), users=SAML_PEOPLE,
                  sp_entity_id=f"{sp}/metadata/", acs_url=f"{sp}/acs/").start()  # fmt: skip
    yield idp
    idp.stop()


@pytest.mark.saml
@pytest.mark.django_db(transaction=True)
def test_signed_metadata_refreshed_from_its_url_signs_a_person_in_through_simplesamlphp(
    simplesamlphp, live_server, federation, keys, settings, monkeypatch, tmp_path
):
    from accounts.services import roles_sync_groups

    roles_sync_groups()
    document = signed(simplesamlphp.metadata_file().read_text(), keys.federation, valid_until=IN_A_WEEK)
    federation.documents["/idp.xml"] = document
    config = saml_provider_config(simplesamlphp, idp_metadata=federation.url("/idp.xml"),
                                  idp_metadata_cert=str(keys.federation.cert))  # fmt: skip
    sso_configure(settings, monkeypatch, tmp_path, [config])
    assert [refresh.outcome for refresh in saml_metadata_refresh_due()] == ["stored"]  # what the task runs
    federation.documents.clear()  # the URL answers 404 now: the sign-in reads the stored copy
    landed = saml_sign_in(requests.Session(), f"{live_server.url}/accounts/sso/{SAML_SLUG}/login/", "nia")
    assert landed.status_code == 200 and landed.url == f"{live_server.url}/", landed.text[:400]
    assert LinkedIdentity.objects.get().user == User.objects.get(email="nia@uni.example")
    assert federation.hits == 1


def test_an_expired_metadata_file_without_a_certificate_is_a_readable_503_not_an_error(
    settings, monkeypatch, tmp_path, client
):
    path = tmp_path / "idp-metadata.xml"
    expired = '<md:EntityDescriptor validUntil="2020-01-01T00:00:00Z"'
    path.write_text(idp_metadata(ENTITY).replace("<md:EntityDescriptor", expired, 1))
    config = {"slug": SAML_SLUG, "name": "Universidade Exemplo (SAML)", "protocol": "saml", "issuer": ENTITY,
              "idp_metadata": str(path)}  # fmt: skip
    sso_configure(settings, monkeypatch, tmp_path, [config])
    answer = client.get(f"/accounts/sso/{SAML_SLUG}/login/")
    assert answer.status_code == 503 and b"cannot be reached just now" in answer.content
