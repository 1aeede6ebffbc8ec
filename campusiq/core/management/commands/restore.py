from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from campusiq.core.backups import BackupError, backup_contributors, backup_restore


class Command(BaseCommand):
    help = (
        "Restores the database and the folders the apps keep beside it from a backup written by `manage.py "
        "backup`, after checking its sha256; refuses a database that holds data unless --force (docs/OPERATIONS.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a campusiq-<time>.tar, with its .sha256 beside it")
        parser.add_argument(
            "--force", action="store_true", help="replace the data the database holds (refused otherwise)"
        )

    def handle(self, *args, file: str, force: bool = False, **options):
        try:
            report = backup_restore(path=Path(file), force=force)
        except (BackupError, DatabaseError, psycopg.Error) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Restored {report.path.name}: checksum verified.")
        self.stdout.write(
            f"  {report.engine} database: {len(report.row_counts)} tables, {sum(report.row_counts.values())} rows, "
            "the backup's row counts"
        )
        for contributor in backup_contributors():
            self.stdout.write(
                f"  {report.files[contributor.name]} {contributor.label} in {contributor.setting}, sha256 verified"
            )
        for verified in report.verified.values():
            self.stdout.write(f"  {verified.summary}")
        if report.pending_migrations:
            self.stdout.write(
                f"  {len(report.pending_migrations)} migrations of this release are not applied yet: run "
                "`manage.py migrate`, then check /health/ready (it also checks what the restore could not yet)"
            )
