"""Backups of the database and of the folders the apps keep beside it, and their verified restore
(docs/OPERATIONS.md).

A backup is one tar file in BACKUP_ROOT, `campusiq-<UTC time>.tar`, with a `sha256sum`-style checksum
beside it (`<name>.sha256`, written last: a backup without one is incomplete and ignored). Inside:

    database.dump | database.sqlite3   pg_dump's custom format, or a copy made by SQLite's backup API
    <contributor>/<path>               every file in the folder of each registered contributor
    manifest.json                      engine, time, migrations, row counts, files and their sha256

An app contributes a folder (the setting naming it) and, optionally, a check that what it restored is
usable; it registers from its AppConfig.ready() (backup_contributor_register). A restore verifies the
checksum before it reads anything else, refuses a database that holds data unless forced, and afterwards
checks the row counts against the manifest and runs the contributors' checks. Credentials never reach a
command line, a log line or the manifest.
"""

# Bandit B404 (subprocess): pg_dump and pg_restore run with a fixed argv, never a shell.
import dataclasses
import datetime
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess  # nosec B404
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from prometheus_client import Gauge
from prometheus_client.core import GaugeMetricFamily

log = structlog.get_logger(__name__)

# Set by backup_create for the backup command's own log line; /metrics reads the backup files themselves
# at scrape time (backup_metrics), since the command runs in a short-lived container whose samples die
# with it.
BACKUP_LAST_SUCCESS = Gauge(
    "campusiq_backup_last_success_timestamp_seconds", "When a backup last succeeded.", registry=None
)
BACKUP_LAST_SIZE = Gauge("campusiq_backup_last_size_bytes", "Size of the last backup.", registry=None)

FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^campusiq-(?P<stamp>\d{8}T\d{6}Z)\.tar$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
CHECKSUM_SUFFIX = ".sha256"
MANIFEST = "manifest.json"
DATABASE_MEMBERS = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
MANIFEST_KEYS = frozenset(
    {"format", "campusiq_version", "created_at", "engine", "database", "migrations", "row_counts"}
)
WORK_PREFIX = ".campusiq-backup-"
# Tables `migrate` fills on an empty database (and the rate-limit cache): rows there are not data a
# restore could destroy, so a freshly migrated database counts as empty.
BOOKKEEPING_TABLES = frozenset(
    {
        "django_migrations",
        "django_content_type",
        "auth_permission",
        "auth_group",
        "auth_group_permissions",
        "campusiq_ratelimit_cache",
    }
)
PG_FALLBACK_BIN = Path("/usr/lib/postgresql/15/bin")
# libpq connection parameters CampusIQ passes on to pg_dump/pg_restore, as environment variables.
LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    # Bandit B105: not a secret: a name, code or example.
    "password": "PGPASSWORD",  # nosec B105
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "options": "PGOPTIONS",
}


class BackupError(Exception):
    """A backup or restore could not be done; the message says why (and never holds a credential)."""


class RestoreRefused(BackupError):
    """The restore did not start: nothing was changed."""


@dataclass(frozen=True)
class Verified:
    """What a contributor's check found after a restore: a line for the operator, and fields for the
    restore's log line."""

    summary: str
    log_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackupContributor:
    """A folder of files an app keeps beside the database: in the archive under `name`/, listed in the
    manifest under `name`."""

    name: str
    setting: str  # the setting holding the folder's path
    label: str  # what the files are, for the commands' output
    app_label: str  # `verify` reads this app's tables: it waits until they match this release's migrations
    verify: Callable[[], Verified] | None

    def folder(self) -> Path:
        return Path(getattr(settings, self.setting))


_contributors: dict[str, BackupContributor] = {}


def backup_contributor_register(
    name: str, *, setting: str, label: str, app_label: str, verify: Callable[[], Verified] | None = None
) -> None:
    """Backs up the folder in settings.<setting> with the database. After a restore (once `app_label` has no
    pending migration) `verify()` checks what was restored is usable: it returns a Verified, or raises
    BackupError."""
    if name in MANIFEST_KEYS or name in DATABASE_MEMBERS.values() or name == MANIFEST:
        raise ValueError(f"{name!r} is a name the backup itself uses")
    _contributors[name] = BackupContributor(name, setting, label, app_label, verify)


def backup_contributors() -> list[BackupContributor]:
    return list(_contributors.values())


# Tables a migration fills with an app's defaults (a campus-wide status set, say): rows there alone do
# not make a database "hold data", so a freshly migrated one takes a restore without --force.
_seeded_tables: set[str] = set()


def backup_seeded_tables_register(*tables: str) -> None:
    _seeded_tables.update(tables)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    sha256: str
    manifest: dict
    pruned: list[Path] = field(default_factory=list)
    offsite: str | None = None


@dataclass(frozen=True)
class RestoreReport:
    path: Path
    engine: str
    row_counts: dict[str, int]
    files: dict[str, int]  # by contributor
    verified: dict[str, Verified]  # by contributor: those that have a check and whose app is migrated
    pending_migrations: list[str]


# --- Back up --------------------------------------------------------------------------------------


def backup_create(*, now: datetime.datetime | None = None) -> BackupResult:
    """Writes a backup of the database and the contributors' folders to BACKUP_ROOT, applies retention, and
    copies it off the host when BACKUP_S3_BUCKET is set (ImproperlyConfigured, after the local backup
    is safely written, when that copy cannot be made)."""
    started = time.monotonic()
    root = Path(settings.BACKUP_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    created_at = (now or datetime.datetime.now(tz=datetime.UTC)).astimezone(datetime.UTC).replace(microsecond=0)
    target = root / f"campusiq-{created_at:{STAMP_FORMAT}}.tar"
    if target.exists() or _checksum_path(target).exists():
        raise BackupError(f"{target} already exists: one backup per second at most")
    # Work files live beside the backups: same volume (an atomic rename), and in Kubernetes the only
    # writable one besides /tmp.
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=root))
    try:
        # The database first, then the folders: their files are written once and never changed, so every
        # row in the dump that names one finds it (one written meanwhile is left unused).
        dump = _database_dump(work)
        files = {contributor.name: _folder_files(contributor.folder()) for contributor in backup_contributors()}
        partial = work / target.name
        manifest = _tar_write(partial, dump=dump, files=files, created_at=created_at)
        # The whole campus, password hashes included: readable by the owner (and its group) only.
        partial.chmod(0o640)
        digest = _sha256_file(partial)
        os.replace(partial, target)
        _checksum_write(target, digest)
    except Exception as error:
        log.error("backup_failed", reason=str(error)[-1000:])
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = target.stat().st_size
    BACKUP_LAST_SUCCESS.set(time.time())
    BACKUP_LAST_SIZE.set(size)
    log.info(
        "backup_written",
        path=str(target),
        size=size,
        sha256=digest,
        engine=dump.engine,
        tables=len(dump.row_counts),
        rows=sum(dump.row_counts.values()),
        **{name: len(entries) for name, entries in files.items()},
        seconds=round(time.monotonic() - started, 3),
    )
    pruned = backups_prune(root=root, keep_daily=settings.BACKUP_KEEP_DAILY, keep_weekly=settings.BACKUP_KEEP_WEEKLY)
    result = BackupResult(path=target, size=size, sha256=digest, manifest=manifest, pruned=pruned)
    if settings.BACKUP_S3_BUCKET:
        result = dataclasses.replace(result, offsite=backup_copy_offsite(path=target))
    return result


@dataclass(frozen=True)
class _Dump:
    engine: str
    path: Path
    row_counts: dict[str, int]
    migrations: dict[str, list[str]]
    server_version: str


def _database_dump(work: Path) -> _Dump:
    engine = _engine()
    if engine == "postgresql":
        return _postgres_dump(work)
    return _sqlite_dump(work)


def _engine() -> str:
    if connection.vendor not in DATABASE_MEMBERS:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {connection.vendor}")
    return connection.vendor


def _model_tables() -> set[str]:
    return set(connection.introspection.django_table_names(only_existing=False, include_views=False))


def _sqlite_dump(work: Path) -> _Dump:
    path = work / DATABASE_MEMBERS["sqlite"]
    connection.ensure_connection()
    copy = sqlite3.connect(path)
    try:
        # The online backup API: a consistent copy while the site keeps running.
        connection.connection.backup(copy)
        # Counted in the copy itself, so the manifest describes exactly what was saved.
        cursor = copy.cursor()
        present = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts = {
            # Bandit B608: identifiers from model metadata; values are parameters.
            table: cursor.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608  (model tables)  # nosec B608
            for table in sorted(_model_tables() & present)
        }
        migrations = _migrations_from(cursor) if "django_migrations" in present else {}
        version = sqlite3.sqlite_version
    finally:
        copy.close()
    return _Dump("sqlite", path, counts, migrations, version)


def _postgres_dump(work: Path) -> _Dump:
    import psycopg
    from psycopg import sql

    path = work / DATABASE_MEMBERS["postgresql"]
    params = _libpq_params()
    # One snapshot for the row counts, the migration state and pg_dump (--snapshot): all three describe
    # the same moment, even while the site keeps writing.
    with psycopg.connect(**params) as snapshot:
        snapshot.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snapshot.read_only = True
        with snapshot.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
            snapshot_id, version = cursor.fetchone()
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = ANY(current_schemas(false))")
            present = {row[0] for row in cursor.fetchall()}
            counts = {}
            for table in sorted(_model_tables() & present):
                cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                counts[table] = cursor.fetchone()[0]
            migrations = _migrations_from(cursor) if "django_migrations" in present else {}
            _pg_run("pg_dump", ["--format=custom", f"--snapshot={snapshot_id}", f"--file={path}"], params)
    return _Dump("postgresql", path, counts, migrations, version)


def _migrations_from(cursor: Any) -> dict[str, list[str]]:
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    applied: dict[str, list[str]] = {}
    for app, name in cursor.fetchall():
        applied.setdefault(app, []).append(name)
    return applied


@dataclass(frozen=True)
class _File:
    relative: str
    path: Path
    size: int


def _folder_files(root: Path) -> list[_File]:
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files.append(_File(path.relative_to(root).as_posix(), path, path.stat().st_size))
    return files


class _HashingReader:
    """Hashes what tarfile reads, so each file's sha256 costs no second pass over it."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.digest.update(chunk)
        return chunk


def _tar_add(tar: tarfile.TarFile, *, name: str, path: Path, size: int) -> str:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(path.stat().st_mtime)
    info.mode = 0o640
    with path.open("rb") as handle:
        reader = _HashingReader(handle)
        tar.addfile(info, reader)
    return reader.digest.hexdigest()


def _tar_write(path: Path, *, dump: _Dump, files: dict[str, list[_File]], created_at: datetime.datetime) -> dict:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        database_member = DATABASE_MEMBERS[dump.engine]
        database_size = dump.path.stat().st_size
        database_sha = _tar_add(tar, name=database_member, path=dump.path, size=database_size)
        listed: dict[str, list[dict]] = {}
        for name, entries in files.items():
            listed[name] = []
            for entry in entries:
                sha = _tar_add(tar, name=f"{name}/{entry.relative}", path=entry.path, size=entry.size)
                listed[name].append({"path": entry.relative, "size": entry.size, "sha256": sha})
        manifest = {
            "format": FORMAT_VERSION,
            "campusiq_version": _campusiq_version(),
            "created_at": created_at.isoformat(),
            "engine": dump.engine,
            "database": {
                "file": database_member,
                "size": database_size,
                "sha256": database_sha,
                "server_version": dump.server_version,
            },
            "migrations": dump.migrations,
            "row_counts": dump.row_counts,
            **listed,
        }
        # Last in the archive, because it holds the hashes computed while the files above were added.
        content = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(content)
        info.mtime = int(created_at.timestamp())
        info.mode = 0o640
        tar.addfile(info, io.BytesIO(content))
    return manifest


def _campusiq_version() -> str:
    return getattr(settings, "CAMPUSIQ_VERSION", "") or os.environ.get("CAMPUSIQ_VERSION", "") or "dev"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _checksum_write(path: Path, digest: str) -> None:
    # `sha256sum -c campusiq-....tar.sha256` checks it too.
    partial = path.with_name(f".{path.name}{CHECKSUM_SUFFIX}.partial")
    partial.write_text(f"{digest}  {path.name}\n")
    os.replace(partial, _checksum_path(path))


# --- Which backups exist, and which to keep -----------------------------------------------------


@dataclass(frozen=True)
class BackupFile:
    path: Path
    created_at: datetime.datetime


def backups_list(root: Path | str) -> list[BackupFile]:
    """Complete backups (tar and checksum) in `root`, newest first. Files named otherwise are not ours."""
    root = Path(root)
    found = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    for path in entries:
        match = NAME_PATTERN.match(path.name)
        if not match or not path.is_file() or not _checksum_path(path).is_file():
            continue
        created_at = datetime.datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=datetime.UTC)
        found.append(BackupFile(path, created_at))
    return sorted(found, key=lambda backup: backup.created_at, reverse=True)


def backup_metrics():
    """The newest backup's time and size, for /metrics (registered in CoreConfig.ready())."""
    when = GaugeMetricFamily("campusiq_backup_last_success_timestamp_seconds", "Newest backup's time (0: none).")
    size = GaugeMetricFamily("campusiq_backup_last_size_bytes", "Size of the newest backup.")
    root = getattr(settings, "BACKUP_ROOT", None)
    latest = latest_backup(root) if root else None
    when.add_metric([], latest[1] if latest else 0)
    size.add_metric([], latest[2] if latest else 0)
    yield when
    yield size


def latest_backup(root: Path | str) -> tuple[Path, float, int] | None:
    """The newest complete backup as (path, mtime, size), or None. Cheap and never raises: /metrics calls
    it on every scrape."""
    for backup in backups_list(root):
        try:
            stat = backup.path.stat()
        except OSError:
            continue
        return backup.path, stat.st_mtime, stat.st_size
    return None


def backups_to_keep(backups: list[BackupFile], *, keep_daily: int, keep_weekly: int) -> set[Path]:
    """The newest backup of each of the `keep_daily` most recent days that have one, and of each of the
    `keep_weekly` most recent ISO weeks (Monday to Sunday) that have one; days and weeks in UTC."""
    keep: set[Path] = set()
    days: set[datetime.date] = set()
    weeks: set[tuple[int, int]] = set()
    for backup in sorted(backups, key=lambda b: b.created_at, reverse=True):
        day = backup.created_at.date()
        week = tuple(backup.created_at.isocalendar())[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(backup.path)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(backup.path)
    return keep


def backups_prune(*, root: Path | str, keep_daily: int, keep_weekly: int) -> list[Path]:
    """Deletes the complete backups retention does not keep (the newest one always stays), and work
    files a killed backup left behind more than a day ago. Returns the backups deleted."""
    root = Path(root)
    backups = backups_list(root)
    keep = backups_to_keep(backups, keep_daily=max(keep_daily, 1), keep_weekly=keep_weekly)
    deleted = []
    for backup in backups:
        if backup.path in keep:
            continue
        # The checksum first: a tar without one is never mistaken for a complete backup.
        _checksum_path(backup.path).unlink(missing_ok=True)
        backup.path.unlink(missing_ok=True)
        deleted.append(backup.path)
    stale = time.time() - 24 * 60 * 60
    for leftover in root.glob(f"{WORK_PREFIX}*"):
        if leftover.is_dir() and leftover.stat().st_mtime < stale:
            shutil.rmtree(leftover, ignore_errors=True)
    if deleted:
        log.info("backups_pruned", deleted=[path.name for path in deleted], kept=len(backups) - len(deleted))
    return deleted


# --- Off the host -------------------------------------------------------------------------------


def backup_copy_offsite(*, path: Path) -> str:
    """Copies a backup and its checksum to BACKUP_S3_BUCKET through django-storages' S3 backend; returns
    the backup's URL there. ImproperlyConfigured when that backend is not installed."""
    storage = _offsite_storage(local=path)
    from django.core.files import File

    for item in (path, _checksum_path(path)):
        with item.open("rb") as handle:
            storage.save(item.name, File(handle, name=item.name))
    key = "/".join(part for part in (settings.BACKUP_S3_PREFIX.strip("/"), path.name) if part)
    url = f"s3://{settings.BACKUP_S3_BUCKET}/{key}"
    log.info("backup_copied_offsite", url=url)
    return url


def _offsite_storage(*, local: Path):
    try:
        from storages.backends.s3 import S3Storage
    except ImportError as missing:
        raise ImproperlyConfigured(
            "BACKUP_S3_BUCKET is set, but django-storages with its S3 backend is not installed: add "
            "`django-storages[s3]` to requirements/base.in, run `make lock` and rebuild the image, or unset "
            f"BACKUP_S3_BUCKET. The local backup {local} was written; it was not copied off the host."
        ) from missing
    options: dict[str, Any] = {
        "bucket_name": settings.BACKUP_S3_BUCKET,
        "location": settings.BACKUP_S3_PREFIX.strip("/"),
        # A backup is never replaced, and never public.
        "file_overwrite": False,
        "default_acl": None,
    }
    if settings.BACKUP_S3_ENDPOINT_URL:
        options["endpoint_url"] = settings.BACKUP_S3_ENDPOINT_URL
    # Credentials: boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an IAM role).
    return S3Storage(**options)


# --- Restore ------------------------------------------------------------------------------------


def backup_verify(*, path: Path) -> str:
    """The backup's sha256 when it matches the checksum file beside it; RestoreRefused otherwise."""
    if not path.is_file():
        raise RestoreRefused(f"{path} is not a file")
    checksum = _checksum_path(path)
    if not checksum.is_file():
        raise RestoreRefused(f"{checksum.name} is missing: an unverified backup is not restored")
    words = checksum.read_text().split()
    expected = words[0].lower() if words else ""
    actual = _sha256_file(path)
    if actual != expected:
        raise RestoreRefused(
            f"{path.name} does not match its checksum (sha256 {actual[:16]}..., expected {expected[:16]}...): "
            "the file is damaged or incomplete; nothing was restored"
        )
    return actual


def backup_restore(*, path: Path, force: bool = False) -> RestoreReport:
    """Replaces the database and restores the contributors' folders from a backup, then verifies them.

    Refuses (RestoreRefused, nothing changed) a backup whose checksum does not match, one from another
    engine or a newer release, and a database that holds data unless `force`."""
    started = time.monotonic()
    path = Path(path)
    try:
        return _restore(path=path, force=force, started=started)
    except RestoreRefused as refusal:
        log.warning("restore_refused", path=str(path), reason=str(refusal))
        raise
    except Exception as error:
        log.error("restore_failed", path=str(path), reason=str(error)[-1000:])
        raise


def _restore(*, path: Path, force: bool, started: float) -> RestoreReport:
    backup_verify(path=path)
    engine = _engine()
    with tarfile.open(path, "r:") as tar:
        manifest = _manifest_read(tar, engine=engine)
        _migrations_known(manifest)
        holding = _tables_with_data()
        if holding and not force:
            shown = ", ".join(holding[:5]) + (f" and {len(holding) - 5} more" if len(holding) > 5 else "")
            raise RestoreRefused(
                f"the database already holds data ({shown}). A restore replaces all of it with the backup; "
                "run again with --force to do that"
            )
        contributors = backup_contributors()
        for contributor in contributors:
            _folder_writable(contributor)
        # The folders first: files written under their own names cannot break the database still in place.
        files = {
            contributor.name: _folder_restore(tar, contributor=contributor, entries=manifest.get(contributor.name, []))
            for contributor in contributors
        }
        with tempfile.TemporaryDirectory(prefix="campusiq-restore-") as scratch:
            database = Path(scratch) / DATABASE_MEMBERS[engine]
            _member_extract(tar, DATABASE_MEMBERS[engine], database, sha256=manifest["database"]["sha256"])
            if engine == "postgresql":
                _postgres_restore(database)
            else:
                _sqlite_restore(database)
    for alias in connections:
        connections[alias].close()
    counts = _row_counts_verify(manifest["row_counts"])
    pending = _pending_migrations()
    # A check reads its app's tables, which must match this release's code to be read: after `migrate`
    # otherwise.
    verified = {
        contributor.name: contributor.verify()
        for contributor in contributors
        if contributor.verify and not any(name.startswith(f"{contributor.app_label}.") for name in pending)
    }
    log.info(
        "backup_restored",
        path=str(path),
        engine=engine,
        created_at=manifest["created_at"],
        rows=sum(counts.values()),
        **files,
        **{key: value for result in verified.values() for key, value in result.log_fields.items()},
        pending_migrations=len(pending),
        seconds=round(time.monotonic() - started, 3),
    )
    return RestoreReport(path, engine, counts, files, verified, pending)


def _manifest_read(tar: tarfile.TarFile, *, engine: str) -> dict:
    try:
        manifest = json.loads(tar.extractfile(MANIFEST).read())
    except (KeyError, AttributeError, ValueError) as error:
        raise RestoreRefused(f"not a CampusIQ backup: no readable {MANIFEST}") from error
    if manifest.get("format") != FORMAT_VERSION:
        raise RestoreRefused(
            f"backup format {manifest.get('format')!r} is not {FORMAT_VERSION}: use a matching release"
        )
    if manifest.get("engine") != engine:
        raise RestoreRefused(
            f"this is a backup of a {manifest.get('engine')} database; the configured database is {engine}"
        )
    return manifest


def _migrations_known(manifest: dict) -> None:
    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    apps = {app for app, _name in on_disk}
    # Apps no longer installed leave their rows in django_migrations forever: only installed apps count.
    unknown = sorted(
        f"{app}.{name}"
        for app, names in manifest["migrations"].items()
        for name in names
        if app in apps and (app, name) not in on_disk
    )
    if unknown:
        raise RestoreRefused(
            f"the backup was made by a newer release (migrations unknown here: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''}): restore it with that release's image or a later one"
        )


def _tables_with_data() -> list[str]:
    with connection.cursor() as cursor:
        ignored = BOOKKEEPING_TABLES | _seeded_tables
        tables = [t for t in connection.introspection.table_names(cursor) if t not in ignored]
        holding = []
        for table in sorted(tables):
            # Bandit B608: identifiers from model metadata; values are parameters.
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(table)} LIMIT 1")  # noqa: S608  (catalog names)  # nosec B608
            if cursor.fetchone():
                holding.append(table)
    return holding


def _folder_writable(contributor: BackupContributor) -> None:
    root = contributor.folder()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RestoreRefused(f"{contributor.setting} ({root}) cannot be created: {error}") from error
    if not os.access(root, os.W_OK):
        raise RestoreRefused(f"{contributor.setting} ({root}) is not writable")


def _folder_restore(tar: tarfile.TarFile, *, contributor: BackupContributor, entries: list[dict]) -> int:
    root = contributor.folder()
    resolved_root = root.resolve()
    for entry in entries:
        target = (root / entry["path"]).resolve()
        if not target.is_relative_to(resolved_root):
            raise RestoreRefused(f"{contributor.name} path {entry['path']!r} leaves {contributor.setting}")
        target.parent.mkdir(parents=True, exist_ok=True)
        _member_extract(tar, f"{contributor.name}/{entry['path']}", target, sha256=entry["sha256"])
    return len(entries)


def _member_extract(tar: tarfile.TarFile, name: str, target: Path, *, sha256: str) -> None:
    """Writes one regular file of the archive to `target` (atomically), checking its sha256."""
    try:
        member = tar.getmember(name)
    except KeyError as missing:
        raise BackupError(f"{name} is missing from the backup") from missing
    if not member.isreg():
        raise BackupError(f"{name} in the backup is not a regular file")
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    source = tar.extractfile(member)
    with partial.open("wb") as out:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise BackupError(f"{name} does not match the manifest's sha256")
    os.replace(partial, target)


def _sqlite_restore(database: Path) -> None:
    connection.ensure_connection()
    if connection.in_atomic_block:
        raise BackupError("a restore cannot run inside a transaction")
    source = sqlite3.connect(database)
    try:
        # The backup API replaces the whole database, page by page, under one lock.
        source.backup(connection.connection)
    finally:
        source.close()
    connection.close()


def _postgres_restore(database: Path) -> None:
    import psycopg

    connection.close()
    params = _libpq_params()
    with psycopg.connect(**params) as target, target.transaction():
        _postgres_drop_objects(target)
    _pg_run(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--no-owner",
            # Grants to roles of the old server may name roles this one lacks; re-grant by hand if used.
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={params['dbname']}",
            str(database),
        ],
        params,
    )


# The objects of the database's own schemas, extension members aside (pg_dump restores those).
_RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""
_ROUTINES_SQL = """
SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""
_TYPES_SQL = """
SELECT n.nspname, t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
"""
_RELATION_KINDS = {
    "r": "TABLE",
    "p": "TABLE",
    "f": "FOREIGN TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "S": "SEQUENCE",
}


def _postgres_drop_objects(target: Any) -> None:
    """Drops every table, view, sequence, routine and type in the database's own schemas, so that the
    restore leaves nothing of what was there (not even objects a newer release added)."""
    from psycopg import sql

    relations = target.execute(_RELATIONS_SQL).fetchall()
    for kind in ("TABLE", "FOREIGN TABLE", "MATERIALIZED VIEW", "VIEW", "SEQUENCE"):
        names = [
            sql.Identifier(schema, name) for schema, name, relkind in relations if _RELATION_KINDS[relkind] == kind
        ]
        if names:
            target.execute(sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(kind), sql.SQL(", ").join(names)))
    for (signature,) in target.execute(_ROUTINES_SQL).fetchall():
        # regprocedure's text is the quoted, schema-qualified signature.
        target.execute(sql.SQL("DROP ROUTINE IF EXISTS {} CASCADE").format(sql.SQL(signature)))
    for schema, name, typtype in target.execute(_TYPES_SQL).fetchall():
        statement = "DROP DOMAIN IF EXISTS {} CASCADE" if typtype == "d" else "DROP TYPE IF EXISTS {} CASCADE"
        target.execute(sql.SQL(statement).format(sql.Identifier(schema, name)))


def _row_counts_verify(expected: dict[str, int]) -> dict[str, int]:
    counts = {}
    differences = []
    with connection.cursor() as cursor:
        for table, rows in sorted(expected.items()):
            # Bandit B608: identifiers from model metadata; values are parameters.
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608  (manifest's tables)  # nosec B608
            counts[table] = cursor.fetchone()[0]
            if counts[table] != rows:
                differences.append(f"{table}: {counts[table]} rows, the backup {rows}")
    if differences:
        raise BackupError(
            "restored, but the row counts differ from the backup's (was something writing?): " + "; ".join(differences)
        )
    return counts


def _pending_migrations() -> list[str]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


# --- PostgreSQL client programs -----------------------------------------------------------------


def _libpq_params() -> dict[str, str]:
    """The configured database's connection parameters, for psycopg and (as PG* variables) the client programs."""
    config = connections["default"].settings_dict
    params = {
        "dbname": config.get("NAME") or "",
        "user": config.get("USER") or "",
        "password": config.get("PASSWORD") or "",
        "host": config.get("HOST") or "",
        "port": str(config.get("PORT") or ""),
    }
    for key, value in (config.get("OPTIONS") or {}).items():
        if key in LIBPQ_ENV and value not in (None, ""):
            params[key] = str(value)
    return {key: value for key, value in params.items() if value}


def pg_program(name: str) -> str:
    """pg_dump or pg_restore: from BACKUP_PG_BIN_DIR if set, else PATH, else PostgreSQL 15's directory."""
    configured = getattr(settings, "BACKUP_PG_BIN_DIR", "")
    candidates = [Path(configured) / name] if configured else []
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    candidates.append(PG_FALLBACK_BIN / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackupError(f"{name} not found (BACKUP_PG_BIN_DIR, PATH, {PG_FALLBACK_BIN}): install the PostgreSQL client")


def _pg_run(program: str, arguments: list[str], params: dict[str, str]) -> None:
    # The password and the other connection settings travel in the environment, never in argv (visible
    # to every user of the host in `ps`) nor in a log line.
    env = {**os.environ, **{LIBPQ_ENV[key]: value for key, value in params.items()}}
    # Bandit B603: fixed argv, no shell.
    completed = subprocess.run(  # noqa: S603  (fixed program, arguments built here)  # nosec B603
        [pg_program(program), "--no-password", *arguments], env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip()[-2000:]
        if params.get("password"):
            detail = detail.replace(params["password"], "[redacted]")
        raise BackupError(f"{program} failed (exit {completed.returncode}): {detail}")
