"""What every benchmark campus starts with: a term around today and one program. Needs django.setup()."""

import datetime

from django.utils import timezone

from attendance.models import ClassSession
from students.models import Department, Program, Section, Term


def term_and_program(name: str, code: str) -> tuple[Term, Program]:
    """A term from 30 days ago to 60 days ahead (add/drop over), and a department with one program."""
    today = timezone.localdate()
    term = Term.objects.create(
        name=f"{name} term",
        start_date=today - datetime.timedelta(days=30),
        end_date=today + datetime.timedelta(days=60),
        add_drop_deadline=today - datetime.timedelta(days=20),
    )
    department = Department.objects.create(code=code, name=name)
    program = Program.objects.create(department=department, code=f"{code}P", name=f"{name} program")
    return term, program


def open_sessions(rooms: list[tuple[Section, str]], *, hours: int) -> list[ClassSession]:
    """One session per (section, room), started five minutes ago and open for `hours` more."""
    now = timezone.now()
    return ClassSession.objects.bulk_create(
        [
            ClassSession(
                section=section,
                starts_at=now - datetime.timedelta(minutes=5),
                ends_at=now + datetime.timedelta(hours=hours),
                room=room,
                state=ClassSession.State.OPEN,
                opened_at=now,
            )
            for section, room in rooms
        ]
    )
