"""Debian's nginx with deploy/nginx/compose-http.conf in front of a real gunicorn under the production settings.

A test copy of the config is rendered (listen address, upstream, static root, log and temp paths; nothing
else) and run as a non-daemon nginx from a temporary prefix. Checked: `nginx -t` on both configs, static
files served by nginx itself with a year-long cache, the API through the proxy with the request id kept
or made by nginx, rate limits keyed on the client address nginx forwards, and nginx's own 413, 502 and
504 for /api/ in the API's problem+json shape. Without nginx these skip on a laptop and fail on CI.
"""

import grp
import http.client
import json
import os
import pwd
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from campusiq.core.request_id import WELL_FORMED_REQUEST_ID
from tests.conftest import redis_url, service_missing
from tests.core.test_settings import GOOD_KEY
from tests.support.processes import ROOT, free_port, stop, wait_for_http

NGINX_DIR = ROOT / "deploy" / "nginx"
HTTP_CONF = NGINX_DIR / "compose-http.conf"
TLS_CONF = NGINX_DIR / "campusiq.conf"
PROBLEM_JSON = "application/problem+json"
YEAR_CACHE = "public, max-age=31536000, immutable"
# Apps whose static files are not ours: leaving them out keeps collectstatic at ~3 s instead of ~30 s.
THIRD_PARTY_STATIC = ("admin", "drf_spectacular_sidecar", "import_export", "rest_framework", "django_filters")
TOKEN_RATE_PER_IP = 5


# --- the renderer ---------------------------------------------------------------------------------


def substitute(conf: str, pattern: str, replacement: str | Callable[[re.Match], str], name: str, count: int = 1) -> str:
    """Replaces what the config must hold exactly `count` times: a changed config fails loudly here
    instead of being tested half-rendered."""
    replace = replacement if callable(replacement) else (lambda _: replacement)
    conf, found = re.subn(pattern, replace, conf, flags=re.MULTILINE)
    assert found == count, f"{name}: {pattern!r} found {found} times, expected {count}"
    return conf


def nginx_version(binary: str) -> tuple[int, ...]:
    output = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stderr
    return tuple(int(part) for part in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output).groups())


def render_site(
    path: Path, *, version: tuple[int, ...], upstream: str, listen: dict[str, str], static_root: Path,
    logs: Path, read_timeout: str = "60s", certificate: tuple[Path, Path] | None = None,
) -> str:  # fmt: skip
    conf, name = path.read_text(), path.name
    # Docker's DNS and "resolve" (nginx >= 1.27.3) become one fixed address, as the config's header says.
    conf = substitute(conf, r"^    resolver .*$\n", "", name)
    conf = substitute(conf, r"^    server web:8000 resolve ", f"    server {upstream} ", name)
    for original, address in listen.items():
        conf = substitute(conf, rf"^    listen {original}", f"    listen {address}", name)
    if version < (1, 25, 1) and "    http2 on;\n" in conf:
        # "http2 on" is nginx >= 1.25.1; before, HTTP/2 was a parameter of listen.
        conf = substitute(
            conf, r"^    listen (\S+) ssl;\n    http2 on;$", lambda m: f"    listen {m[1]} ssl http2;", name
        )
    conf = substitute(conf, r"alias /srv/static/;", f"alias {static_root}/;", name)
    conf = substitute(
        conf,
        r"access_log /var/log/nginx/access\.log ",
        f"access_log {logs}/access.log ",
        name,
        conf.count("access_log /"),
    )
    conf = substitute(conf, r"proxy_read_timeout 60s;", f"proxy_read_timeout {read_timeout};", name)
    if certificate:
        conf = substitute(
            conf, r"ssl_certificate /etc/nginx/tls/fullchain\.pem;", f"ssl_certificate {certificate[0]};", name
        )
        conf = substitute(
            conf, r"ssl_certificate_key /etc/nginx/tls/privkey\.pem;", f"ssl_certificate_key {certificate[1]};", name
        )
    return conf


def render_main(*, prefix: Path, site: Path) -> str:
    """The nginx.conf around the site: foreground, every path inside the prefix."""
    user = ""
    if os.geteuid() == 0:
        # As root (CI) the workers drop to an unprivileged user, as a packaged nginx does.
        nobody = pwd.getpwnam("nobody")
        user = f"user {nobody.pw_name} {grp.getgrgid(nobody.pw_gid).gr_name};\n"
    mime_types = Path("/etc/nginx/mime.types")
    types = f"include {mime_types};" if mime_types.is_file() else "types { text/css css; application/javascript js; }"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 128;
}}
http {{
    {types}
    default_type application/octet-stream;
{temp_paths}
    include {site};
}}
"""  # fmt: skip


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    # Debian puts nginx in /usr/sbin, which is not on a non-root user's PATH.
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not binary:
        service_missing("nginx (apt-get install nginx)")
    return binary


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not pytest's tmp_path: nginx's workers run as nobody under root and need to traverse it.
    path = Path(tempfile.mkdtemp(prefix="campusiq-nginx-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def production_env(**extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))},
        "DJANGO_SETTINGS_MODULE": "campusiq.settings.prod",
        "DJANGO_SECRET_KEY": GOOD_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": "postgres://campusiq:pw@db.invalid:5432/campusiq",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        **extra,
    }


@pytest.fixture(scope="module")
def static_root(workdir: Path, nginx_binary: str) -> Path:
    root = workdir / "static"
    ignored = [arg for app in THIRD_PARTY_STATIC for arg in ("-i", app)]
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0", *ignored],
        env=production_env(DJANGO_STATIC_ROOT=str(root)), cwd=ROOT, check=True, timeout=120,
    )  # fmt: skip
    return root


@dataclass
class Proxy:
    port: int
    logs: Path
    process: subprocess.Popen

    def access_lines(self, request_id: str, timeout: float = 3.0) -> list[dict]:
        """nginx's access lines for one request id (written just after the response is sent)."""
        deadline = time.monotonic() + timeout
        while True:
            text = (self.logs / "access.log").read_text() if (self.logs / "access.log").exists() else ""
            lines = [json.loads(line) for line in text.splitlines() if request_id in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


@pytest.fixture(scope="module")
def start_proxy(nginx_binary: str, workdir: Path, static_root: Path) -> Iterator[Callable[..., Proxy]]:
    """Starts nginx with compose-http.conf in front of 127.0.0.1:<upstream_port>."""
    version = nginx_version(nginx_binary)
    proxies: list[Proxy] = []

    def start(upstream_port: int, read_timeout: str = "10s") -> Proxy:
        prefix = workdir / f"nginx-{len(proxies)}"
        prefix.mkdir()
        prefix.chmod(0o755)
        port = free_port()
        site = prefix / "campusiq.conf"
        site.write_text(
            render_site(
                HTTP_CONF, version=version, upstream=f"127.0.0.1:{upstream_port}", listen={"8080": f"127.0.0.1:{port}"},
                static_root=static_root, logs=prefix, read_timeout=read_timeout,
            )
        )  # fmt: skip
        main = prefix / "nginx.conf"
        main.write_text(render_main(prefix=prefix, site=site))
        process = subprocess.Popen(
            [nginx_binary, "-p", str(prefix), "-c", str(main), "-e", str(prefix / "error.log")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        proxy = Proxy(port=port, logs=prefix, process=process)
        proxies.append(proxy)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/nginx-health", process=process, timeout=10)
        except (RuntimeError, TimeoutError) as error:
            log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
            raise AssertionError(f"nginx did not start: {error}\n{stop(process)}\n{log}") from error
        return proxy

    yield start
    for proxy in proxies:
        stop(proxy.process)


def closed_port() -> int:
    """A port nobody listens on: connecting to it is refused, as with gunicorn stopped."""
    return free_port()


@pytest.fixture
def silent_upstream() -> Iterator[int]:
    """Accepts connections (the kernel's backlog does) and never answers: a stuck gunicorn."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# --- a client -------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def call(
    proxy: Proxy, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None,
    client: str = "127.0.0.1",
) -> Reply:  # fmt: skip
    """One request to nginx from `client`, any address of the loopback range (127.0.0.0/8)."""
    connection_ = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=15, source_address=(client, 0))
    try:
        connection_.request(method, path, body=body, headers=headers or {})
        response = connection_.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection_.close()


def assert_problem(reply: Reply, status: int, code: str, request_id: str | None = None) -> dict:
    """The API's error shape (docs/API.md), with the request id of the header."""
    assert reply.status == status, reply.body[:500]
    assert reply.headers["Content-Type"].startswith(PROBLEM_JSON), reply.headers["Content-Type"]
    problem = reply.json()
    assert problem["type"] == f"urn:campusiq:problem:{code}" and problem["code"] == code
    assert problem["status"] == status and problem["title"] == HTTPStatus(status).phrase
    assert problem["detail"]
    assert problem["request_id"] == reply.headers["X-Request-ID"]
    if request_id is not None:
        assert problem["request_id"] == request_id
    return problem


def loopback_client() -> str:
    """A random loopback address, so rate-limit counters in Redis never carry over from another run."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def request_id() -> str:
    return f"nginx-test-{uuid.uuid4().hex[:16]}"


# --- the configs ----------------------------------------------------------------------------------


def api_error_pages(conf: str) -> dict[int, dict]:
    """The /api/ location's error_page codes, each with the JSON its named location returns."""
    api = re.search(r"^    location /api/ \{(.*?)^    \}", conf, re.MULTILINE | re.DOTALL)
    assert api, "no location /api/"
    pages = {}
    for code, target in re.findall(r"error_page (\d+) (@\w+);", api.group(1)):
        named = re.search(rf"^    location {target} \{{(.*?)^    \}}", conf, re.MULTILINE | re.DOTALL)
        assert named, target
        assert "default_type application/problem+json;" in named.group(1), target
        assert "add_header X-Request-ID $campusiq_request_id always;" in named.group(1), target
        status, body = re.search(r"return (\d+) '(.*)';", named.group(1)).groups()
        assert status == code, target
        pages[int(code)] = json.loads(body.replace("\\n", "").replace("$campusiq_request_id", "0123456789abcdef"))
    return pages


def test_nginx_answers_for_the_api_in_its_problem_shape_in_both_configs():
    pages = api_error_pages(HTTP_CONF.read_text())
    assert pages == api_error_pages(TLS_CONF.read_text())
    assert set(pages) == {413, 502, 504}
    for status, problem in pages.items():
        assert problem == {
            "type": f"urn:campusiq:problem:{problem['code']}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": problem["detail"],
            "code": problem["code"],
            "request_id": "0123456789abcdef",
        }
    assert pages[413]["code"] == "request_too_large"  # the code Django answers with for the same limit


def test_both_configs_pass_nginx_t(nginx_binary, workdir):
    version = nginx_version(nginx_binary)
    prefix = workdir / "syntax"
    prefix.mkdir()
    certificate = (prefix / "fullchain.pem", prefix / "privkey.pem")
    if not shutil.which("openssl"):
        service_missing("openssl (apt-get install openssl)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=campus.example.edu",
         "-keyout", str(certificate[1]), "-out", str(certificate[0])],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    sites = {
        HTTP_CONF: {"listen": {"8080": "127.0.0.1:18080"}},
        TLS_CONF: {
            "listen": {"80;": "127.0.0.1:18081;", "443 ssl;": "127.0.0.1:18443 ssl;"},
            "certificate": certificate,
        },
    }
    for path, options in sites.items():
        site = prefix / path.name
        site.write_text(
            render_site(path, version=version, upstream="127.0.0.1:18000", static_root=prefix, logs=prefix, **options)
        )
        main = prefix / f"nginx-{path.stem}.conf"
        main.write_text(render_main(prefix=prefix, site=site))
        result = subprocess.run(
            [nginx_binary, "-t", "-p", str(prefix), "-c", str(main), "-e", str(prefix / "error.log")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, f"{path.name}:\n{result.stderr}"
        assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_static_files_are_served_by_nginx_with_a_year_long_cache(start_proxy, static_root):
    # Upstream refused: anything proxied would be a 502, so a 200 here is nginx's own.
    proxy = start_proxy(closed_port())
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["css/campusiq.css"]
    assert hashed != "css/campusiq.css"
    reply = call(proxy, "GET", f"/static/{hashed}")
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == YEAR_CACHE
    assert reply.headers["Content-Type"].startswith("text/css")
    assert reply.body == (static_root / hashed).read_bytes()
    missing = call(proxy, "GET", "/static/css/no-such-file.css")
    assert missing.status == 404  # try_files: never passed on to gunicorn


def test_oversized_api_body_is_refused_by_nginx_as_problem_json(start_proxy):
    proxy = start_proxy(closed_port())
    sent_id = request_id()
    body = b"{" + b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024 * 1024) + b"}"
    reply = call(
        proxy, "POST", "/api/v1/auth/token/", body=body,
        headers={"Content-Type": "application/json", "X-Request-ID": sent_id},
    )  # fmt: skip
    assert_problem(reply, 413, "request_too_large", sent_id)
    (line,) = proxy.access_lines(sent_id)
    assert line["status"] == 413 and line["upstream_time"] == ""  # gunicorn never saw it


def test_api_with_gunicorn_down_or_stuck_answers_problem_json(start_proxy, silent_upstream):
    down = start_proxy(closed_port())
    reply = call(down, "GET", "/api/v1/")
    problem = assert_problem(reply, 502, "bad_gateway")
    # No id sent: nginx made one, the same in the body, the header and its access line.
    assert re.fullmatch(r"[0-9a-f]{32}", problem["request_id"])
    (line,) = down.access_lines(problem["request_id"])
    assert line["status"] == 502
    # A malformed id is replaced, never echoed into the JSON.
    reply = call(down, "GET", "/api/v1/", headers={"X-Request-ID": 'bad id","x":"y'})
    assert re.fullmatch(r"[0-9a-f]{32}", assert_problem(reply, 502, "bad_gateway")["request_id"])
    # Pages outside the API keep nginx's own error page.
    page = call(down, "GET", "/")
    assert page.status == 502 and not page.headers["Content-Type"].startswith(PROBLEM_JSON)

    stuck = start_proxy(silent_upstream, read_timeout="1s")
    sent_id = request_id()
    assert_problem(call(stuck, "GET", "/api/v1/", headers={"X-Request-ID": sent_id}), 504, "gateway_timeout", sent_id)


# --- through to gunicorn --------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db
def test_api_through_nginx_and_gunicorn(start_proxy, workdir):
    database = connection.settings_dict
    gunicorn_port = free_port()
    env = production_env(
        DATABASE_URL=f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}",
        REDIS_URL=redis_url(),
        DJANGO_STATIC_ROOT=str(workdir / "static"),
        # The compose trial's settings (plain HTTP); nginx is the one trusted proxy.
        DJANGO_SECURE_SSL_REDIRECT="false",
        TRUSTED_PROXY_CIDRS="127.0.0.1/32",
        FORWARDED_ALLOW_IPS="127.0.0.1",
        API_TOKEN_RATE_PER_IP=f"{TOKEN_RATE_PER_IP}/m",
        GUNICORN_BIND=f"127.0.0.1:{gunicorn_port}",
        GUNICORN_WORKERS="1",
    )
    gunicorn = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
         "campusiq.wsgi:application"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{gunicorn_port}/health/live", process=gunicorn, headers={"Host": "127.0.0.1"})
        proxy = start_proxy(gunicorn_port)

        # The API answers through nginx, and the client's request id comes back from Django.
        sent_id = request_id()
        reply = call(proxy, "GET", "/api/v1/", headers={"X-Request-ID": sent_id})
        assert reply.status == 200, reply.body[:500]
        assert reply.json()["version"] == "1" and reply.headers["X-Request-ID"] == sent_id
        (line,) = proxy.access_lines(sent_id)
        assert line["status"] == 200 and line["upstream_time"] != ""
        # Django's own errors pass through untouched (with their "instance").
        problem = assert_problem(call(proxy, "GET", "/api/v1/me/"), 401, "not_authenticated")
        assert problem["instance"] == "/api/v1/me/"
        assert WELL_FORMED_REQUEST_ID.fullmatch(problem["request_id"])

        # Rate limits count the address nginx saw, whatever X-Forwarded-For the client made up.
        limited, other = loopback_client(), loopback_client()
        statuses = []
        for attempt in range(2 * TOKEN_RATE_PER_IP + 2):  # room for one window boundary
            reply = call(proxy, "POST", "/api/v1/auth/token/", client=limited, **wrong_credentials(attempt))
            statuses.append(reply.status)
            if reply.status == 429:
                assert_problem(reply, 429, "rate_limited")
                break
        assert statuses[-1] == 429 and set(statuses[:-1]) == {401}, statuses
        assert len(statuses) > TOKEN_RATE_PER_IP
        assert_problem(call(proxy, "POST", "/api/v1/auth/token/", client=other, **wrong_credentials(99)), 401,
                       "invalid_credentials")  # fmt: skip
    finally:
        output = stop(gunicorn)

    # gunicorn stopped: nginx answers for the API, in the same shape.
    sent_id = request_id()
    assert_problem(call(proxy, "GET", "/api/v1/", headers={"X-Request-ID": sent_id}), 502, "bad_gateway", sent_id)
    assert "Traceback" not in output, output[-3000:]


def wrong_credentials(attempt: int) -> dict:
    """A sign-in with a wrong password for a new address each time (so only the per-address limit counts),
    claiming to come from elsewhere through a made-up X-Forwarded-For."""
    body = {"email": f"nobody-{uuid.uuid4().hex[:12]}@campus.example.edu", "password": "not-the-password"}
    return {
        "body": json.dumps(body).encode(),
        "headers": {"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{attempt % 250 + 1}"},
    }
