"""The client's address, as rate limits and check-in evidence need it, behind a reverse proxy.

Only when the direct peer is a trusted proxy (TRUSTED_PROXY_CIDRS, e.g. nginx) is X-Forwarded-For
read, and then from the right: the first address that is not itself a trusted proxy is the client.
Anyone else's X-Forwarded-For is ignored, so a client cannot choose the address it is limited by.
"""

import ipaddress
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse


@cache
def _trusted(cidrs: tuple[str, ...]):
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(remote_addr: str, forwarded_for: str, trusted_cidrs: tuple[str, ...]) -> str:
    networks = _trusted(trusted_cidrs)
    if not forwarded_for or not _is_trusted(remote_addr, networks):
        return remote_addr
    for candidate in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _is_trusted(candidate, networks):
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return remote_addr
    return remote_addr


class ClientIpMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = tuple(settings.TRUSTED_PROXY_CIDRS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.trusted:
            request.META["REMOTE_ADDR"] = client_ip(
                request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""), self.trusted
            )
        return self.get_response(request)
