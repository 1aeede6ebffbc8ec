"""Private calendar feeds: the secret URL is the only credential, revoked or unknown is 404, each
session keeps its UID through changes, a cancelled one says so, clients poll cheaply (ETag, 304),
a feed holds only its owner's timetable, and its query count does not grow with sessions."""

import datetime

import pytest
import time_machine
from django.db import IntegrityError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from accounts.roles import Role
from attendance.models import CalendarFeed, ClassSession
from attendance.services import calendar_feed_create, calendar_feed_use
from attendance.views import calendar as calendar_views
from campusiq.core.models import AuditLogEntry
from tests.factories import (
    CalendarFeedFactory,
    ClassSessionFactory,
    CourseFactory,
    EnrollmentFactory,
    SectionFactory,
    StudentFactory,
    TermFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def campus():
    """S in section X (taught by L), O in section Y; X has sessions this term, next term and last term."""
    term = TermFactory(name="2026 Autumn")
    next_term = TermFactory(name="2027 Spring", start_date=datetime.date(2027, 2, 1))
    past_term = TermFactory(name="2026 Spring", start_date=datetime.date(2026, 2, 2))
    lecturer = UserFactory(roles=[Role.LECTURER])
    section_x = SectionFactory(term=term, course=CourseFactory(code="CS101", title="Programming"), lecturers=[lecturer])
    section_y = SectionFactory(term=term, course=CourseFactory(code="MA201", title="Algebra"))
    later_x = SectionFactory(term=next_term, course=section_x.course, lecturers=[lecturer])
    earlier_x = SectionFactory(term=past_term, course=section_x.course, lecturers=[lecturer])
    student = StudentFactory(student_number="S-SUBJECT-1", user__first_name="Ada", user__last_name="Lovelace")
    other = StudentFactory(student_number="S-OTHER-99", user__first_name="Grace", user__last_name="Hopper")
    for section in (section_x, later_x, earlier_x):
        EnrollmentFactory(student=student, section=section)
    EnrollmentFactory(student=other, section=section_y)
    return {
        "student": student,
        "other": other,
        "lecturer": lecturer,
        "x": ClassSessionFactory(section=section_x, room="B-101"),
        "y": ClassSessionFactory(section=section_y, room="Y-999"),
        "later": ClassSessionFactory(section=later_x),
        "earlier": ClassSessionFactory(section=earlier_x),
    }


def _fetch(token: str, **headers):
    # A fresh client with no cookies: what a calendar app sends.
    return Client().get(reverse("attendance:calendar-feed", kwargs={"token": token}), headers=headers)


def _events(response) -> dict[str, dict]:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return {str(event["uid"]): event for event in calendar.walk("VEVENT")}


def test_a_students_feed_holds_their_sections_this_term_and_next_with_the_token_alone(campus):
    _feed, token = calendar_feed_create(user=campus["student"].user)
    events = _events(_fetch(token))
    starts = sorted(event.decoded("dtstart") for event in events.values())
    assert starts == [campus["x"].starts_at, campus["later"].starts_at]
    event = next(e for e in events.values() if e.decoded("dtstart") == campus["x"].starts_at)
    assert str(event["summary"]) == "CS101 Programming"
    assert str(event["location"]) == "B-101"
    assert event.decoded("dtend") == campus["x"].ends_at
    assert str(event["status"]) == "CONFIRMED"
    assert b"MA201" not in _fetch(token).content


def test_a_lecturers_feed_holds_their_taught_sections_and_no_student(campus):
    _feed, token = calendar_feed_create(user=campus["lecturer"])
    response = _fetch(token)
    assert len(_events(response)) == 2
    for private in (b"Lovelace", b"Ada", b"S-SUBJECT-1", b"Hopper", b"S-OTHER-99", b"MA201"):
        assert private not in response.content


def test_unknown_and_revoked_feeds_are_404_and_a_new_feed_revokes_the_old(campus):
    user = campus["student"].user
    _first, old_token = calendar_feed_create(user=user)
    assert _fetch(old_token).status_code == 200
    _second, new_token = calendar_feed_create(user=user)
    assert _fetch(old_token).status_code == 404
    assert _fetch(new_token).status_code == 200
    assert _fetch(new_token + "x").status_code == 404
    assert _fetch("not-a-feed").status_code == 404
    assert CalendarFeed.objects.filter(user=user, revoked_at__isnull=True).count() == 1
    assert CalendarFeed.objects.filter(user=user).count() == 2


def test_only_the_hash_of_the_secret_is_stored_and_an_inactive_owners_feed_is_dead(campus):
    user = campus["student"].user
    feed, token = calendar_feed_create(user=user)
    assert token not in feed.token_hash and len(feed.token_hash) == 64
    assert AuditLogEntry.objects.filter(verb="calendar_feed.created", object_id=str(feed.pk)).exists()
    assert calendar_feed_use(token=token) == feed
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert calendar_feed_use(token=token) is None


def test_a_session_keeps_its_uid_when_it_moves_and_shows_cancelled(campus):
    _feed, token = calendar_feed_create(user=campus["student"].user)
    session = campus["x"]
    before = _events(_fetch(token))
    uid = next(uid for uid, e in before.items() if e.decoded("dtstart") == session.starts_at)
    traveller = time_machine.travel(timezone.now() + datetime.timedelta(minutes=1))
    traveller.start()
    session.starts_at += datetime.timedelta(hours=2)
    session.ends_at += datetime.timedelta(hours=2)
    session.save(update_fields=["starts_at", "ends_at", "updated_at"])
    moved = _events(_fetch(token))
    assert set(moved) == set(before)
    assert moved[uid].decoded("dtstart") == session.starts_at
    assert moved[uid].decoded("sequence") > before[uid].decoded("sequence")
    session.state = ClassSession.State.CANCELLED
    session.save(update_fields=["state", "updated_at"])
    cancelled = _events(_fetch(token))
    assert str(cancelled[uid]["status"]) == "CANCELLED"
    traveller.stop()


def test_clients_poll_cheaply_with_the_etag_and_see_changes(campus):
    _feed, token = calendar_feed_create(user=campus["student"].user)
    first = _fetch(token)
    assert "private" in first["Cache-Control"] and "max-age=300" in first["Cache-Control"]
    assert first["Last-Modified"]
    unchanged = _fetch(token, if_none_match=first["ETag"])
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert _fetch(token, if_modified_since=first["Last-Modified"]).status_code == 304
    campus["x"].room = "C-202"
    campus["x"].save(update_fields=["room", "updated_at"])
    changed = _fetch(token, if_none_match=first["ETag"])
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    assert b"C-202" in changed.content


def test_a_dropped_section_leaves_the_feed_and_changes_the_etag(campus):
    _feed, token = calendar_feed_create(user=campus["student"].user)
    first = _fetch(token)
    dropped = {"status": "dropped", "ended_on": datetime.date(2026, 12, 1)}
    campus["student"].enrollments.filter(section=campus["x"].section).update(**dropped)
    second = _fetch(token, if_none_match=first["ETag"])
    assert second.status_code == 200
    assert len(_events(second)) == 1


def test_a_section_swapped_for_another_with_as_many_sessions_changes_the_etag(campus):
    _feed, token = calendar_feed_create(user=campus["student"].user)
    first = _fetch(token)
    dropped = {"status": "dropped", "ended_on": datetime.date(2026, 12, 1)}
    campus["student"].enrollments.filter(section=campus["x"].section).update(**dropped)
    EnrollmentFactory(student=campus["student"], section=campus["y"].section)  # its session is as old
    second = _fetch(token, if_none_match=first["ETag"])
    assert second.status_code == 200
    assert b"MA201" in second.content and b"CS101 Programming" in second.content  # next term's CS101 stays


def test_the_feeds_queries_do_not_grow_with_sessions(campus, django_assert_max_num_queries):
    _feed, token = calendar_feed_create(user=campus["student"].user)
    section = campus["x"].section

    def queries_for_feed() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert _fetch(token).status_code == 200
        return len(captured)

    _fetch(token)  # the first read writes last_used_at; measure the polls after it
    few = queries_for_feed()
    for day in range(1, 30):
        start = campus["x"].starts_at + datetime.timedelta(days=day)
        ClassSessionFactory(section=section, starts_at=start, ends_at=start + datetime.timedelta(hours=1))
    assert len(_events(_fetch(token))) == 31
    assert queries_for_feed() == few
    with django_assert_max_num_queries(few):
        _fetch(token)


def test_the_feed_is_rate_limited_per_token(campus, monkeypatch):
    monkeypatch.setattr(calendar_views, "FEED_RATE_PER_FEED", "2/h")
    _feed, token = calendar_feed_create(user=campus["student"].user)
    assert [_fetch(token).status_code for _ in range(3)] == [200, 200, 429]
    assert _fetch(calendar_feed_create(user=campus["lecturer"])[1]).status_code == 200


# --- The page where a student or lecturer makes and revokes their feed -----------------------------------


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_making_a_feed_shows_its_url_once_and_revoking_kills_it(campus):
    client = _signed_in(campus["student"].user)
    page = client.get(reverse("attendance:calendar"))
    assert page.status_code == 200
    assert b"You have no calendar feed" in page.content
    made = client.post(reverse("attendance:calendar"))
    assert made.status_code == 200
    assert "no-store" in made["Cache-Control"] or "no-cache" in made["Cache-Control"]
    url = made.context["feed_url"]
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert url.encode() in made.content
    assert _fetch(token).status_code == 200
    again = client.get(reverse("attendance:calendar"))
    assert url.encode() not in again.content
    assert again.context["feed"] is not None
    revoked = client.post(reverse("attendance:calendar-revoke"), follow=True)
    assert b"revoked" in revoked.content
    assert _fetch(token).status_code == 404
    assert revoked.context["feed"] is None


def test_only_students_and_lecturers_have_a_feed_page(campus):
    advisor = UserFactory(roles=[Role.ADVISOR])
    assert _signed_in(advisor).get(reverse("attendance:calendar")).status_code == 403
    assert _signed_in(advisor).post(reverse("attendance:calendar")).status_code == 403
    assert not CalendarFeed.objects.filter(user=advisor).exists()
    assert _signed_in(campus["lecturer"]).get(reverse("attendance:calendar")).status_code == 200


def test_the_page_needs_the_csrf_token(campus):
    client = Client(enforce_csrf_checks=True)
    client.force_login(campus["student"].user)
    assert client.post(reverse("attendance:calendar")).status_code == 403
    assert not CalendarFeed.objects.exists()


def test_one_active_feed_per_person_is_a_database_rule(campus):
    user = campus["student"].user
    CalendarFeedFactory(user=user, revoked_at=timezone.now())
    CalendarFeedFactory(user=user)
    with pytest.raises(IntegrityError):
        CalendarFeedFactory(user=user)


def test_a_lab_groups_session_is_on_its_members_timetable_and_the_lecturers_only(campus):
    from tests.factories import SectionGroupFactory, SectionGroupMemberFactory

    section = campus["x"].section
    lab_a, lab_b = (
        SectionGroupFactory(section=section, name="Lab A"),
        SectionGroupFactory(section=section, name="Lab B"),
    )
    SectionGroupMemberFactory(group=lab_a, student=campus["student"])
    start = campus["x"].starts_at + datetime.timedelta(days=1)
    ClassSessionFactory(section=section, group=lab_a, starts_at=start, ends_at=start + datetime.timedelta(hours=1))
    ClassSessionFactory(section=section, group=lab_b, starts_at=start, ends_at=start + datetime.timedelta(hours=1))
    _feed, token = calendar_feed_create(user=campus["student"].user)
    starts = [event.decoded("dtstart") for event in _events(_fetch(token)).values()]
    assert starts.count(start) == 1  # Lab A's, not Lab B's
    _feed, lecturer_token = calendar_feed_create(user=campus["lecturer"])
    assert len(_events(_fetch(lecturer_token))) == 4  # both labs, besides this term's and next term's sessions
