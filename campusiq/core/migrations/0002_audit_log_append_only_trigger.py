"""The database itself refuses to rewrite the audit log.

UPDATE is refused on every engine. On PostgreSQL, DELETE of single rows is refused too; TRUNCATE
(the deliberate, whole-table operation of a restore or a test flush) stays possible. SQLite has no
TRUNCATE and flushes with DELETE, so there only UPDATE is guarded; the ORM refuses deletes everywhere.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION core_auditlogentry_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER core_auditlogentry_append_only
    BEFORE UPDATE OR DELETE ON core_auditlogentry
    FOR EACH ROW EXECUTE FUNCTION core_auditlogentry_refuse_change();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS core_auditlogentry_append_only ON core_auditlogentry;
DROP FUNCTION IF EXISTS core_auditlogentry_refuse_change();
"""
SQLITE_FORWARD = """
CREATE TRIGGER core_auditlogentry_append_only BEFORE UPDATE ON core_auditlogentry
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (UPDATE refused)'); END;
"""
SQLITE_REVERSE = "DROP TRIGGER IF EXISTS core_auditlogentry_append_only;"


def forward(apps, schema_editor):
    sql = {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql, params=None)


def reverse(apps, schema_editor):
    sql = {"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
