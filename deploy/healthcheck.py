"""Container health check with nothing but the standard library (the image has no curl).

    python deploy/healthcheck.py http /health/live [PORT]    exit 0 on a 2xx from the local gunicorn

Django answers only to DJANGO_ALLOWED_HOSTS, so the request names the first of them as its Host.
(Celery worker and beat answer `celery inspect ping` instead; see docker-compose.yml.)
"""

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4


def allowed_host() -> str:
    hosts = [host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()]
    # ".example.edu" allows example.edu and its subdomains.
    return hosts[0].lstrip(".") if hosts else "localhost"


def http_ok(path: str, port: int) -> bool:
    # A fixed http URL on the loopback address.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": allowed_host(), "X-Forwarded-Proto": "https", "User-Agent": "campusiq-healthcheck"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as error:
        print(f"healthcheck: {path}: {error}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    if len(argv) in (2, 3) and argv[0] == "http" and argv[1].startswith("/"):
        port = int(argv[2]) if len(argv) == 3 else 8000
        return 0 if http_ok(argv[1], port) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
