"""Indexes the sessions signed in before SignedInSession existed, so a password change or a
deactivation ends them too. Reversing leaves the sessions alone (the index table goes with 0003)."""

from django.db import migrations
from django.utils import timezone

BATCH = 1000


def index_existing_sessions(apps, schema_editor):
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    Session = apps.get_model("sessions", "Session")
    SignedInSession = apps.get_model("accounts", "SignedInSession")
    User = apps.get_model("accounts", "User")
    store = SessionStore()
    rows = []
    live = Session.objects.filter(expire_date__gt=timezone.now()).values_list("session_key", "session_data")
    for session_key, session_data in live.iterator(chunk_size=BATCH):
        user_id = store.decode(session_data).get(SESSION_KEY)  # {} when unreadable (another SECRET_KEY)
        if user_id is not None and str(user_id).isdigit():
            rows.append((session_key, int(user_id)))
    existing = set(User.objects.filter(pk__in={user_id for _, user_id in rows}).values_list("pk", flat=True))
    SignedInSession.objects.bulk_create(
        [SignedInSession(session_id=key, user_id=user_id) for key, user_id in rows if user_id in existing],
        batch_size=BATCH,
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_signedinsession"),
    ]

    operations = [
        migrations.RunPython(index_existing_sessions, migrations.RunPython.noop),
    ]
