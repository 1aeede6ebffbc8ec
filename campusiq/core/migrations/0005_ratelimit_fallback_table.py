"""The table rate limits are counted in while Redis is down (campusiq/core/cache.py).

`manage.py createcachetable` only finds DatabaseCache aliases; in production the table is the fallback
inside a FailoverCache, so the release's `migrate` makes it. Idempotent: an existing table is kept.
"""

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "campusiq_ratelimit_cache"


def create_table(apps, schema_editor):
    command = CreateCacheTable()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_outboxmessage"),
    ]

    operations = [
        migrations.RunPython(create_table, drop_table),
    ]
