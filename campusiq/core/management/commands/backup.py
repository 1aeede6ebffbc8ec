import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from campusiq.core.backups import BackupError, backup_contributors, backup_create


class Command(BaseCommand):
    help = (
        "Backs up the database and the folders the apps keep beside it to BACKUP_ROOT (one .tar and its "
        ".sha256), applies retention, and copies the backup to BACKUP_S3_BUCKET if set (docs/OPERATIONS.md)."
    )

    def handle(self, *args, **options):
        try:
            result = backup_create()
        except (BackupError, ImproperlyConfigured, DatabaseError, psycopg.Error) as error:
            raise CommandError(str(error)) from error
        counts = result.manifest["row_counts"]
        self.stdout.write(f"Backup written: {result.path}")
        self.stdout.write(
            f"  {result.size} bytes, sha256 {result.sha256}; {result.manifest['engine']} database "
            f"({len(counts)} tables, {sum(counts.values())} rows)"
            + "".join(
                f", {len(result.manifest[contributor.name])} {contributor.label}"
                for contributor in backup_contributors()
            )
        )
        for path in result.pruned:
            self.stdout.write(f"  retention: deleted {path.name}")
        if result.offsite:
            self.stdout.write(f"  copied to {result.offsite}")
