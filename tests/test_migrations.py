"""Every migration applies on an empty PostgreSQL database and reverses to zero."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from tests.support.processes import ROOT

UNAPPLY_ALL = """
import django
django.setup()
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
executor = MigrationExecutor(connection)
executor.migrate([(app, None) for app in sorted(executor.loader.migrated_apps)])
executor.loader.build_graph()
print("applied after:", len(executor.loader.applied_migrations))
"""


@pytest.mark.postgres
@pytest.mark.django_db
def test_all_migrations_apply_to_an_empty_postgresql_and_reverse_to_zero():
    settings = connection.settings_dict
    server = f"postgresql://{settings['USER']}:{settings['PASSWORD'] or ''}@{settings['HOST']}:{settings['PORT']}"
    name = "campusiq_migrations_roundtrip"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": f"{server}/{name}", "DJANGO_SETTINGS_MODULE": "campusiq.settings.test"}
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
        with psycopg.connect(f"{server}/{name}") as scratch:
            tables = scratch.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        assert tables > 30
        result = subprocess.run(
            [sys.executable, "-c", UNAPPLY_ALL], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        assert "applied after: 0" in result.stdout
        with psycopg.connect(f"{server}/{name}") as scratch:
            left = scratch.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'django_migrations'"
            ).fetchall()
        assert left == []
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
