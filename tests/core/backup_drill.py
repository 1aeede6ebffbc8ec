"""The campus a restore drill backs up (tests/core/test_backups.py), built in a process of its own
against the database in DATABASE_URL, with the model artifacts in MODEL_ARTIFACT_ROOT:

    DJANGO_SETTINGS_MODULE=campusiq.settings.dev python -m tests.core.backup_drill

Migrates, loads the small demo campus (seed 2026: 200 students, three past terms and the current one),
trains the at-risk model on it (it becomes the active one), gives one student an absence reported in
advance with a document (PRIVATE_FILE_ROOT), then runs `manage.py backup` (in this process, to spare the
drill a start-up).
"""

import os


def campus_seed() -> None:
    from django.core.management import call_command

    from portal.demo import demo_data_seed
    from predictions.training import risk_model_train

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    demo_data_seed(size="small", seed=2026)
    version = risk_model_train()
    if version.status != version.Status.ACTIVE:
        raise SystemExit(f"the drill's model was not activated: {version.status_reason}")
    absence_with_document()


def absence_with_document() -> None:
    from django.core.files.base import ContentFile

    from attendance.models import AdvanceAbsence
    from students.models import Enrollment

    enrollment = Enrollment.objects.select_related("student", "section__term").order_by("pk").first()
    term = enrollment.section.term
    absence = AdvanceAbsence(student=enrollment.student, section=enrollment.section, term=term,
                             first_day=term.start_date, last_day=term.start_date, reason="A drill's certificate.",
                             attachment_content_type="application/pdf")  # fmt: skip
    absence.attachment.save("certificate.pdf", ContentFile(b"%PDF-1.4\n% the drill's document\n"), save=False)
    absence.save()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campusiq.settings.dev")
    import django

    django.setup()
    campus_seed()
    from django.core.management import call_command

    call_command("backup")
