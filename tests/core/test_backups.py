"""Backups and their verified restore (campusiq/core/backups.py, docs/OPERATIONS.md).

The restore drills run the real commands in processes of their own, on each engine: seed the demo
campus and train a model, back up, wipe, restore, then compare the row counts and a hash of the ordered
rows of the key tables, and load the restored model. SQLite uses a database file (the suite's own is in
memory); PostgreSQL a scratch database on the test server.
"""

import dataclasses
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
import types
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from campusiq.core import backups
from students.models import Student
from tests.factories import StudentFactory
from tests.support.processes import ROOT

KEY_TABLES = [
    "accounts_user",
    "students_student",
    "students_enrollment",
    "students_grade",
    "students_termoutcome",
    "attendance_attendancerecord",
    "predictions_modelversion",
]


# --- The drill's tools --------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """One CampusIQ installation run by subprocesses: its database, artifacts and backups."""

    database_url: str
    models: Path
    backups: Path

    def env(self) -> dict[str, str]:
        inherited = ("DJANGO_", "DATABASE_URL", "REDIS_URL", "PG", "BACKUP_", "MODEL_ARTIFACT_ROOT", "CELERY_",
                     "PRIVATE_FILE_ROOT")  # fmt: skip
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(inherited)},
            "DJANGO_SETTINGS_MODULE": "campusiq.settings.dev",
            "DATABASE_URL": self.database_url,
            "MODEL_ARTIFACT_ROOT": str(self.models),
            "PRIVATE_FILE_ROOT": str(self.private),
            "BACKUP_ROOT": str(self.backups),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }

    @property
    def private(self) -> Path:
        """Its students' documents (PRIVATE_FILE_ROOT), beside its artifacts."""
        return self.models.with_name(f"{self.models.name}-private")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], env=self.env(), cwd=ROOT, capture_output=True, text=True, timeout=300
        )

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("manage.py", *args)

    def seed_and_back_up(self) -> tuple[Path, subprocess.CompletedProcess]:
        completed = self.run("-m", "tests.core.backup_drill")
        assert completed.returncode == 0, completed.stderr[-3000:]
        latest = backups.latest_backup(self.backups)
        assert latest is not None
        return latest[0], completed


def fingerprint(db) -> dict[str, tuple[int, str]]:
    """Row count and sha256 of the rows, ordered by id, of each key table (any DB-API connection)."""
    cursor = db.cursor()
    result = {}
    for table in KEY_TABLES:
        cursor.execute(f'SELECT * FROM "{table}" ORDER BY id')  # noqa: S608  (fixed names)
        rows = cursor.fetchall()
        result[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return result


def sqlite_fingerprint(path: Path) -> dict[str, tuple[int, str]]:
    db = sqlite3.connect(path)
    try:
        return fingerprint(db)
    finally:
        db.close()


def postgres_fingerprint(url: str) -> dict[str, tuple[int, str]]:
    import psycopg

    with psycopg.connect(url) as db:
        return fingerprint(db)


def tree(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


# --- SQLite: the drill runs anywhere --------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_site(tmp_path_factory):
    """A seeded campus in a SQLite file, and its backup."""
    home = tmp_path_factory.mktemp("sqlite-site")
    site = Site(f"sqlite:///{home / 'campus.sqlite3'}", home / "models", home / "backups")
    path, completed = site.seed_and_back_up()
    return site, home / "campus.sqlite3", path, completed


def test_sqlite_restore_drill(sqlite_site, tmp_path):
    site, database, backup, _ = sqlite_site
    before = sqlite_fingerprint(database)
    assert before["students_student"][0] == 200 and before["attendance_attendancerecord"][0] > 20_000
    assert before["predictions_modelversion"][0] == 1
    # The campus is gone: no database file, no artifacts. The restore brings both back.
    wiped = Site(f"sqlite:///{tmp_path / 'campus.sqlite3'}", tmp_path / "models", site.backups)

    completed = wiped.manage("restore", str(backup))

    assert completed.returncode == 0, completed.stderr
    assert "checksum verified" in completed.stdout
    assert "its artifact loads" in completed.stdout
    assert sqlite_fingerprint(tmp_path / "campus.sqlite3") == before
    assert tree(wiped.models) == tree(site.models) != {}
    assert tree(wiped.private) == tree(site.private) != {}  # a student's document came back with its row
    assert "1 absence documents present" in completed.stdout
    (restored,) = [line for line in log_lines(completed.stdout) if line["event"] == "backup_restored"]
    assert restored["pending_migrations"] == 0 and restored["active_model"].startswith("risk-")


def test_sqlite_restore_with_force_replaces_a_database_holding_data(sqlite_site, tmp_path):
    site, database, backup, _ = sqlite_site
    original = sqlite_fingerprint(database)
    changed = Site(f"sqlite:///{tmp_path / 'campus.sqlite3'}", tmp_path / "models", site.backups)
    shutil.copy(database, tmp_path / "campus.sqlite3")
    shutil.copytree(site.models, changed.models)
    db = sqlite3.connect(tmp_path / "campus.sqlite3")
    with db:
        db.execute("DELETE FROM students_grade WHERE id % 3 = 0")
        db.execute("UPDATE students_student SET status = 'withdrawn' WHERE id % 5 = 0")
        db.execute("CREATE TABLE leftover (id INTEGER PRIMARY KEY)")
    db.close()
    assert sqlite_fingerprint(tmp_path / "campus.sqlite3") != original
    # (Without --force it is refused: test_restore_refuses_a_database_holding_data, on each engine.)

    forced = changed.manage("restore", str(backup), "--force")

    assert forced.returncode == 0, forced.stderr
    assert sqlite_fingerprint(tmp_path / "campus.sqlite3") == original
    db = sqlite3.connect(tmp_path / "campus.sqlite3")
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'leftover'").fetchone() == (0,)
    db.close()


def test_backup_holds_the_database_every_artifact_and_a_manifest(sqlite_site):
    site, database, backup, completed = sqlite_site
    assert backups.NAME_PATTERN.match(backup.name)
    assert backup.stat().st_mode & 0o777 == 0o640
    checksum = backup.with_name(backup.name + ".sha256").read_text()
    assert checksum == f"{file_sha256(backup)}  {backup.name}\n"  # the format `sha256sum -c` reads
    with tarfile.open(backup) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        copied = {
            name.removeprefix("artifacts/"): hashlib.sha256(tar.extractfile(name).read()).hexdigest()
            for name in names
            if name.startswith("artifacts/")
        }
    assert set(names) == {"manifest.json", "database.sqlite3", *(f"artifacts/{name}" for name in tree(site.models)),
                          *(f"private-files/{name}" for name in tree(site.private))}  # fmt: skip
    assert copied == tree(site.models)
    assert manifest["engine"] == "sqlite" and manifest["format"] == backups.FORMAT_VERSION
    assert datetime.datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    assert {entry["path"] for entry in manifest["artifacts"]} == set(copied)
    # Every table of every model is counted, and the migration state is the whole of this release's.
    assert set(manifest["row_counts"]) == set(connection.introspection.django_table_names())
    counts = sqlite_fingerprint(database)
    assert all(manifest["row_counts"][table] == counts[table][0] for table in KEY_TABLES)
    applied = {(app, name) for app, names in manifest["migrations"].items() for name in names}
    assert applied >= set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    (written,) = [line for line in log_lines(completed.stdout) if line["event"] == "backup_written"]
    assert written["path"] == str(backup)
    assert written["size"] == backup.stat().st_size and written["sha256"] == file_sha256(backup)


# A backup written by the release before backup contributors (issue 16), on SQLite: one user and an active
# model (a small scikit-learn pipeline saved with artifact_save). Gzipped here; the tar is the original.
WRITTEN_BEFORE = Path(__file__).parent / "fixtures" / "campusiq-20261207T120750Z.tar"


def test_a_backup_written_by_an_earlier_release_still_restores_and_its_model_loads(tmp_path):
    site = Site(f"sqlite:///{tmp_path / 'campus.sqlite3'}", tmp_path / "models", tmp_path / "backups")
    site.backups.mkdir()
    backup = site.backups / WRITTEN_BEFORE.name
    backup.write_bytes(gzip.decompress(WRITTEN_BEFORE.with_name(WRITTEN_BEFORE.name + ".gz").read_bytes()))
    shutil.copy(WRITTEN_BEFORE.with_name(WRITTEN_BEFORE.name + ".sha256"), site.backups)
    with tarfile.open(backup) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())

    completed = site.manage("restore", str(backup))

    assert completed.returncode == 0, completed.stderr
    assert "checksum verified" in completed.stdout
    assert tree(site.models) == {entry["path"]: entry["sha256"] for entry in manifest["artifacts"]} != {}
    db = sqlite3.connect(tmp_path / "campus.sqlite3")
    assert db.execute("SELECT email FROM accounts_user").fetchall() == [("legacy@example.edu",)]
    db.close()
    (restored,) = [line for line in log_lines(completed.stdout) if line["event"] == "backup_restored"]
    assert restored["artifacts"] == 1 and restored["pending_migrations"] > 0  # this release's migrations come next
    # Migrated to this release, the restored model loads (the check the restore leaves to after `migrate`).
    assert site.manage("migrate", "--no-input").returncode == 0
    loads = site.run("-c", "import django; django.setup(); from predictions.checks import restored_model_loads; "
                           "print(restored_model_loads().summary)")  # fmt: skip
    assert loads.returncode == 0 and "active model risk-legacy-1: its artifact loads" in loads.stdout, loads.stderr


# --- PostgreSQL: the production engine ------------------------------------------------------------


def scratch_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Drops and creates `name` on the test server (as bench/harness.py fresh_database does)."""
    import psycopg

    parts = urlsplit(server_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    parts = urlsplit(server_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def postgres_site(tmp_path_factory):
    """A seeded campus in a scratch PostgreSQL database, and its backup. The URL carries a password
    that must appear nowhere: the server's own, or (scripts/services.sh's server trusts local
    connections and ignores it) a made-up one."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL is not the suite's database")
    settings_dict = connection.settings_dict
    password = settings_dict["PASSWORD"] or "drill-secret-Zq7pW3"
    server = f"postgres://{settings_dict['USER']}:{password}@{settings_dict['HOST']}:{settings_dict['PORT']}/postgres"
    home = tmp_path_factory.mktemp("postgres-site")
    site = Site(scratch_database(server, "campusiq_backup_drill"), home / "models", home / "backups")
    path, completed = site.seed_and_back_up()
    yield site, server, password, path, completed
    for name in ("campusiq_backup_drill", "campusiq_backup_drill_restored", "campusiq_backup_drill_forced"):
        drop_database(server, name)


@pytest.mark.postgres
def test_postgres_restore_drill(postgres_site, tmp_path):
    site, server, password, backup, backed_up = postgres_site
    before = postgres_fingerprint(site.database_url)
    assert before["students_student"][0] == 200 and before["predictions_modelversion"][0] == 1
    # A new, empty database and no artifacts: the server and the volume were lost.
    wiped = Site(scratch_database(server, "campusiq_backup_drill_restored"), tmp_path / "models", site.backups)

    completed = wiped.manage("restore", str(backup))

    assert completed.returncode == 0, completed.stderr
    assert "its artifact loads" in completed.stdout
    assert postgres_fingerprint(wiped.database_url) == before
    assert tree(wiped.models) == tree(site.models) != {}
    with tarfile.open(backup) as tar:
        assert set(tar.getnames()) >= {"manifest.json", "database.dump"}
        manifest = tar.extractfile("manifest.json").read().decode()
    assert json.loads(manifest)["engine"] == "postgresql"
    # The password reaches no output, no log line, no manifest, no byte of the backup (a short one
    # could occur by chance: services.sh's server gets the made-up one).
    if len(password) < 12:
        return
    for text in (backed_up.stdout, backed_up.stderr, completed.stdout, completed.stderr, manifest):
        assert password not in text
    assert password.encode() not in backup.read_bytes()


@pytest.mark.postgres
def test_postgres_restore_refuses_data_unless_forced_then_replaces_everything(postgres_site, tmp_path):
    import psycopg

    site, server, _, backup, _ = postgres_site
    original = postgres_fingerprint(site.database_url)
    changed = Site(
        scratch_database(server, "campusiq_backup_drill_forced", template="campusiq_backup_drill"),
        tmp_path / "models",
        site.backups,
    )
    # Changes since the backup, and objects a later release might have added (a table that depends on
    # the backup's tables, a function): --force must leave none of them.
    with psycopg.connect(changed.database_url) as db:
        db.execute("DELETE FROM students_grade WHERE id % 3 = 0")
        db.execute("UPDATE students_student SET status = 'withdrawn' WHERE id % 5 = 0")
        db.execute("CREATE TABLE leftover (id bigint PRIMARY KEY, student_id bigint REFERENCES students_student(id))")
        db.execute("CREATE FUNCTION leftover_answer() RETURNS int LANGUAGE sql AS 'SELECT 42'")
    edited = postgres_fingerprint(changed.database_url)

    refused = changed.manage("restore", str(backup))

    assert refused.returncode == 1
    assert "already holds data" in refused.stderr and "--force" in refused.stderr
    assert postgres_fingerprint(changed.database_url) == edited != original
    assert not changed.models.exists()

    forced = changed.manage("restore", str(backup), "--force")

    assert forced.returncode == 0, forced.stderr
    assert postgres_fingerprint(changed.database_url) == original
    with psycopg.connect(changed.database_url) as db:
        assert db.execute("SELECT to_regclass('leftover'), to_regproc('leftover_answer')").fetchone() == (None, None)
        # The audit log's append-only trigger came back with the schema.
        assert db.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'core_auditlogentry_append_only'"
        ).fetchone() == (1,)


# --- Checksums and refusals: nothing is touched ---------------------------------------------------


@pytest.fixture
def artifact_root(settings, tmp_path):
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    return settings.MODEL_ARTIFACT_ROOT


def test_restore_refuses_a_backup_that_does_not_match_its_checksum(db, sqlite_site, artifact_root, tmp_path):
    _, _, backup, _ = sqlite_site
    StudentFactory()
    damaged = tmp_path / backup.name
    content = bytearray(backup.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    shutil.copy(backup.with_name(backup.name + ".sha256"), tmp_path)

    with pytest.raises(CommandError, match="does not match its checksum"):
        call_command("restore", str(damaged), "--force")

    assert Student.objects.count() == 1
    assert not artifact_root.exists()


def test_restore_refuses_a_backup_without_checksum(db, sqlite_site, artifact_root, tmp_path):
    _, _, backup, _ = sqlite_site
    shutil.copy(backup, tmp_path)

    with pytest.raises(CommandError, match=r"\.sha256 is missing"):
        call_command("restore", str(tmp_path / backup.name), "--force")

    assert not artifact_root.exists()


def forged_backup(directory: Path, **manifest_changes) -> Path:
    """A backup with a valid checksum whose manifest says something else."""
    manifest = {
        "format": backups.FORMAT_VERSION,
        "engine": connection.vendor,
        "created_at": "2026-11-02T01:30:00+00:00",
        "migrations": {},
        "row_counts": {},
        "artifacts": [],
        **manifest_changes,
    }
    path = directory / "campusiq-20261102T013000Z.tar"
    with tarfile.open(path, "w") as tar:
        content = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    path.with_name(path.name + ".sha256").write_text(f"{file_sha256(path)}  {path.name}\n")
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"engine": "oracle"}, "backup of a oracle database"),
        ({"migrations": {"students": ["0001_initial", "0999_from_the_future"]}}, "made by a newer release"),
        ({"format": 99}, "backup format 99"),
    ],
)
def test_restore_refuses_another_engine_or_a_newer_release(db, artifact_root, tmp_path, changes, message):
    StudentFactory()
    path = forged_backup(tmp_path, **changes)

    with pytest.raises(CommandError, match=message):
        call_command("restore", str(path), "--force")

    assert Student.objects.count() == 1
    assert not artifact_root.exists()


def test_restore_refuses_a_database_holding_data(db, artifact_root, tmp_path):
    StudentFactory()
    path = forged_backup(tmp_path)

    with pytest.raises(CommandError, match=r"already holds data \(.*students_student"):
        call_command("restore", str(path))

    assert not artifact_root.exists()


# --- Retention ----------------------------------------------------------------------------------


def backup_files(root: Path, *stamps: str, complete: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for stamp in stamps:
        path = root / f"campusiq-{stamp}.tar"
        path.write_bytes(b"backup")
        if complete:
            path.with_name(path.name + ".sha256").write_text(f"{'0' * 64}  {path.name}\n")


def test_retention_keeps_seven_daily_and_four_weekly(tmp_path):
    first = datetime.date(2026, 10, 1)
    nightly = [f"{first + datetime.timedelta(days=n):%Y%m%d}T013000Z" for n in range(41)]  # 1 Oct - 10 Nov
    backup_files(tmp_path, *nightly, "20261110T140000Z")  # a second one on Tuesday 10 November
    backup_files(tmp_path, "20261002T020000Z", complete=False)  # interrupted: no checksum
    (tmp_path / "before-release-2026-10-03.tar").write_bytes(b"kept by hand")
    stale, fresh = tmp_path / ".campusiq-backup-stale", tmp_path / ".campusiq-backup-running"
    stale.mkdir(), fresh.mkdir()
    os.utime(stale, (time.time() - 2 * 86400,) * 2)

    deleted = backups.backups_prune(root=tmp_path, keep_daily=7, keep_weekly=4)

    kept = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".sha256"))
    assert kept == [
        ".campusiq-backup-running",
        "before-release-2026-10-03.tar",
        "campusiq-20261002T020000Z.tar",
        # ISO weeks 43 and 44 (Mondays 19 and 26 October): their newest.
        "campusiq-20261025T013000Z.tar",
        "campusiq-20261101T013000Z.tar",
        # The last seven days that have a backup, the newest of each (weeks 45 and 46 fall among them).
        "campusiq-20261104T013000Z.tar",
        "campusiq-20261105T013000Z.tar",
        "campusiq-20261106T013000Z.tar",
        "campusiq-20261107T013000Z.tar",
        "campusiq-20261108T013000Z.tar",
        "campusiq-20261109T013000Z.tar",
        "campusiq-20261110T140000Z.tar",
    ]
    assert len(deleted) == 42 - 9
    assert all(not p.with_name(p.name + ".sha256").exists() for p in deleted)
    assert all(p.with_name(p.name + ".sha256").exists() for p in tmp_path.glob("campusiq-202610[23]*Z.tar"))


def test_retention_always_keeps_the_newest(tmp_path):
    backup_files(tmp_path, "20261101T013000Z", "20261102T013000Z")

    backups.backups_prune(root=tmp_path, keep_daily=0, keep_weekly=0)

    assert [b.path.name for b in backups.backups_list(tmp_path)] == ["campusiq-20261102T013000Z.tar"]


def test_latest_backup_is_the_newest_complete_one(tmp_path):
    assert backups.latest_backup(tmp_path / "missing") is None
    backup_files(tmp_path, "20261103T013000Z", complete=False)
    assert backups.latest_backup(tmp_path) is None
    backup_files(tmp_path, "20261101T013000Z", "20261102T013000Z")

    path, mtime, size = backups.latest_backup(str(tmp_path))

    assert path == tmp_path / "campusiq-20261102T013000Z.tar"
    assert mtime == path.stat().st_mtime and size == 6


# --- Backing up in this process: metrics, log line, off-site copy, the nightly task --------------


@pytest.fixture
def backup_settings(settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path / "backups"
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    (settings.MODEL_ARTIFACT_ROOT / "risk-models").mkdir(parents=True)
    (settings.MODEL_ARTIFACT_ROOT / "risk-models" / "risk-test.joblib").write_bytes(b"model bytes")
    settings.BACKUP_S3_BUCKET = ""
    return settings


def test_backup_sets_the_metrics_and_logs_where_it_wrote(db, backup_settings, log_output):
    result = backups.backup_create()

    assert result.path.parent == backup_settings.BACKUP_ROOT
    assert backups.latest_backup(backup_settings.BACKUP_ROOT)[0] == result.path
    assert backups.BACKUP_LAST_SIZE._value.get() == result.size == result.path.stat().st_size
    assert abs(backups.BACKUP_LAST_SUCCESS._value.get() - time.time()) < 60
    (written,) = [line for line in log_lines(log_output.getvalue()) if line["event"] == "backup_written"]
    assert written["path"] == str(result.path) and written["sha256"] == result.sha256
    assert result.manifest["artifacts"] == [
        {"path": "risk-models/risk-test.joblib", "size": 11, "sha256": hashlib.sha256(b"model bytes").hexdigest()}
    ]
    # Nothing of the work files stays behind.
    assert sorted(p.name for p in backup_settings.BACKUP_ROOT.iterdir()) == [
        result.path.name,
        result.path.name + ".sha256",
    ]


def test_offsite_copy_without_django_storages_is_improperly_configured(db, backup_settings, monkeypatch):
    backup_settings.BACKUP_S3_BUCKET = "campus-backups"
    monkeypatch.setitem(sys.modules, "storages", None)

    with pytest.raises(ImproperlyConfigured, match=r"django-storages\[s3\].*was written"):
        backups.backup_create(now=datetime.datetime(2026, 11, 2, 1, 30, tzinfo=datetime.UTC))
    with pytest.raises(CommandError, match="BACKUP_S3_BUCKET is set"):
        call_command("backup", stdout=io.StringIO())

    # The local backups are there all the same.
    assert len(backups.backups_list(backup_settings.BACKUP_ROOT)) == 2


def test_offsite_copy_goes_through_the_s3_storage(db, backup_settings, monkeypatch):
    saved, options = [], {}

    class FakeS3Storage:
        def __init__(self, **kwargs):
            options.update(kwargs)

        def save(self, name, content):
            saved.append((name, content.read()))
            return name

    module = types.ModuleType("storages.backends.s3")
    module.S3Storage = FakeS3Storage
    monkeypatch.setitem(sys.modules, "storages", types.ModuleType("storages"))
    monkeypatch.setitem(sys.modules, "storages.backends", types.ModuleType("storages.backends"))
    monkeypatch.setitem(sys.modules, "storages.backends.s3", module)
    backup_settings.BACKUP_S3_BUCKET = "campus-backups"
    backup_settings.BACKUP_S3_ENDPOINT_URL = "https://s3.example.edu"

    result = backups.backup_create()

    assert options["bucket_name"] == "campus-backups" and options["location"] == "campusiq/backups"
    assert options["endpoint_url"] == "https://s3.example.edu" and options["file_overwrite"] is False
    assert [name for name, _ in saved] == [result.path.name, result.path.name + ".sha256"]
    assert saved[0][1] == result.path.read_bytes()
    assert result.offsite == f"s3://campus-backups/campusiq/backups/{result.path.name}"


def test_nightly_task_runs_the_backup(backup_settings, monkeypatch):
    from campusiq.core.backup_tasks import backup_nightly

    written = backups.BackupResult(path=Path("/backups/campusiq-20261102T013000Z.tar"), size=1, sha256="", manifest={})
    monkeypatch.setattr("campusiq.core.backup_tasks.backup_create", lambda: written)

    assert backup_nightly.name == "core.backup_nightly"
    assert backup_nightly.delay().get() == "/backups/campusiq-20261102T013000Z.tar"
    assert "campusiq.core.backup_tasks" in backup_settings.CELERY_IMPORTS


def test_a_freshly_migrated_database_holds_no_data_a_restore_would_refuse_for(db):
    from importlib import import_module

    from django.apps import apps

    from attendance.models import AttendanceStatusSet, AttendanceWarningRule

    # What the migrations put there (made again where a transactional test emptied the tables).
    seeds = (
        ("0004_status_sets_and_attendance_grade", "default_set_create", AttendanceStatusSet),
        ("0006_advance_absences_warning_rules", "default_rule_from_settings", AttendanceWarningRule),
    )
    for migration, seed, model in seeds:
        if not model.objects.exists():
            getattr(import_module(f"attendance.migrations.{migration}"), seed)(apps, None)
    assert AttendanceStatusSet.objects.exists() and AttendanceWarningRule.objects.exists()
    assert backups._tables_with_data() == []
    StudentFactory()
    assert "students_student" in backups._tables_with_data()
