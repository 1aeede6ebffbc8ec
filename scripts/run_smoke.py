"""Proves the README's first command as a newcomer meets it: `make run` on this checkout, in the
background, until the home page, readiness and the sign-in page answer; then signs in as a demo
student, opens the student's dashboard, and stops the server. Standard library only.

    python3 scripts/run_smoke.py [--port 8000] [--timeout 600]

Exits non-zero, with `make run`'s output, when any step fails. Used by .ci/run.
"""

import argparse
import http.cookiejar
import os
import re
import signal
import subprocess  # nosec B404  (runs make, our own command)
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The README's demo student (docs/DEMO_DATA.md).
STUDENT_EMAIL = "student1@campusiq.example"
STUDENT_PASSWORD = "demo-student1-pass-2026"  # noqa: S105  (a published demo account)  # nosec B105
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class SmokeFailure(Exception):
    pass


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _get(opener, url: str) -> tuple[int, str, str]:
    try:
        with opener.open(url, timeout=10) as response:  # nosec B310  (a loopback URL of ours)
            return response.status, response.geturl(), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, url, error.read().decode("utf-8", "replace")


def wait_until_answering(base: str, paths: list[str], *, deadline: float, server: subprocess.Popen) -> None:
    opener = _opener()
    pending = list(paths)
    while pending:
        if server.poll() is not None:
            raise SmokeFailure(f"`make run` exited with {server.returncode} before {pending[0]} answered")
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{base}{pending[0]} did not answer 200 in time")
        try:
            status, _, _ = _get(opener, base + pending[0])
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = None
        if status == 200:
            print(f"run smoke: {pending[0]} answered 200", flush=True)
            pending.pop(0)
        else:
            time.sleep(0.5)


def sign_in_as_student(base: str) -> None:
    opener = _opener()
    status, _, page = _get(opener, f"{base}/accounts/login/")
    token = CSRF_FIELD.search(page)
    if status != 200 or token is None:
        raise SmokeFailure(f"sign-in page: status {status}, CSRF field {'found' if token else 'missing'}")
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token.group(1), "username": STUDENT_EMAIL, "password": STUDENT_PASSWORD}
    ).encode()
    request = urllib.request.Request(  # noqa: S310  (a loopback URL of ours)
        f"{base}/accounts/login/", data=body, headers={"Referer": f"{base}/accounts/login/"}
    )
    try:
        with opener.open(request, timeout=10) as response:  # nosec B310
            landed = response.geturl()
    except urllib.error.HTTPError as error:
        raise SmokeFailure(f"signing in as {STUDENT_EMAIL}: HTTP {error.code}") from error
    if "/accounts/login/" in urllib.parse.urlsplit(landed).path:
        raise SmokeFailure(f"signing in as {STUDENT_EMAIL} did not leave the sign-in page")
    status, url, page = _get(opener, f"{base}/portal/student/")
    if status != 200 or "/accounts/login/" in url or 'action="/accounts/logout/"' not in page:
        raise SmokeFailure(f"the student's dashboard after signing in: status {status} at {url}")
    print(f"run smoke: signed in as {STUDENT_EMAIL}; /portal/student/ answered 200", flush=True)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--timeout", type=float, default=600, help="Seconds until every page must answer.")
    options = parser.parse_args()
    base = f"http://127.0.0.1:{options.port}"
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as output:
        server = subprocess.Popen(  # noqa: S603  # nosec B603 B607  (the README's command, fixed arguments)
            ["make", "run", f"PORT={options.port}"],  # noqa: S607
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_answering(
                base,
                ["/", "/health/ready", "/accounts/login/"],
                deadline=started + options.timeout,
                server=server,
            )
            first_page = time.monotonic() - started
            sign_in_as_student(base)
        except SmokeFailure as failure:
            stop(server)
            output.seek(0)
            sys.stdout.write(output.read()[-20000:])
            print(f"run smoke: FAILED: {failure}", flush=True)
            return 1
        stop(server)
        output.seek(0)
        sys.stdout.write(output.read())
    whole = time.monotonic() - started
    print(f"run smoke: `make run` to every page answering in {first_page:.1f}s; whole check {whole:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
