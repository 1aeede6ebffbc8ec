"""A person's timetable as an iCalendar document (RFC 5545), for the private calendar feeds.

Each session is one VEVENT whose UID never changes, so a calendar client replaces the event when the
session moves and shows it struck through when it is cancelled (STATUS:CANCELLED). Times are UTC.
Only what the timetable needs: course, room, times; never a student's name or mark.
"""

import datetime
from collections.abc import Iterable

from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from attendance.models import ClassSession

PRODUCT_ID = "-//CampusIQ//Timetable//EN"
UID_DOMAIN = "class-sessions.campusiq"
# SEQUENCE counts seconds from here: growing with every change, and within 32 bits until 2092.
SEQUENCE_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def session_uid(session: ClassSession) -> str:
    return f"session-{session.pk}@{UID_DOMAIN}"


def timetable_ics(sessions: Iterable[ClassSession], *, name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for session in sessions:
        course = session.section.course
        event = Event()
        event.add("uid", session_uid(session))
        event.add("dtstamp", session.updated_at)
        event.add("last-modified", session.updated_at)
        # RFC 5545: a revised event's SEQUENCE grows.
        event.add("sequence", max(0, int((session.updated_at - SEQUENCE_EPOCH).total_seconds())))
        event.add("dtstart", session.starts_at)
        event.add("dtend", session.ends_at)
        event.add("summary", f"{course.code} {course.title}")
        if session.room:
            event.add("location", session.room)
        event.add("description", _("Section %(section)s, %(term)s") % {
            "section": session.section.code, "term": session.section.term.name,
        })  # fmt: skip
        cancelled = session.state == ClassSession.State.CANCELLED
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()
