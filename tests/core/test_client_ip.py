import pytest

from campusiq.core.client_ip import client_ip

TRUSTED = ("127.0.0.1/32", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("127.0.0.1", "193.136.4.20", "193.136.4.20"),  # through our nginx
        ("127.0.0.1", "6.6.6.6, 193.136.4.20", "193.136.4.20"),  # a spoofed first hop is ignored
        ("127.0.0.1", "193.136.4.20, 10.0.0.7", "193.136.4.20"),  # two trusted proxies
        ("8.8.8.8", "193.136.4.20", "8.8.8.8"),  # not from a proxy: header ignored
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "10.0.0.1, 10.0.0.2", "127.0.0.1"),  # only proxies: the peer stands
        ("127.0.0.1", "2001:690::1", "2001:690::1"),
    ],
)
def test_client_ip(remote, forwarded, expected):
    assert client_ip(remote, forwarded, TRUSTED) == expected


def test_untrusted_by_default(client, settings):
    assert settings.TRUSTED_PROXY_CIDRS == []


@pytest.mark.django_db
def test_health_live_is_trivial_and_quiet(client, log_output):
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "/health/live" not in log_output.getvalue()
