"""The secrets the no-secret-in-any-output tests look for (tests/core/test_telemetry_live.py), and a
Celery task that raises with them in scope: a password (under a secret's name and not) and an API token
in its locals, a database URL with the password in its message. Only the tests' worker loads it."""

from celery import shared_task

FAULT_PASSWORD = "hunter2-Secret!-9c4e"  # nosec B105  (the test's known secret)
FAULT_TOKEN = "ciq_5f0c2a9e_Zk3Qm8VtY1pLw6RrN2dXs0Hc"  # nosec B105  (shaped like accounts/tokens.py's keys)


@shared_task(name="tests.fault_with_secrets")
def fault_with_secrets() -> None:
    credentials = {"email": "a@b.c", "password": FAULT_PASSWORD}
    login = ("a@b.c", FAULT_PASSWORD)  # no name says "secret" here
    api_key = FAULT_TOKEN
    assert login
    raise RuntimeError(
        f"could not reach postgres://campusiq:{credentials['password']}@db:5432/campusiq ({len(api_key)})"
    )
