"""Series of sessions on several weekdays, every N weeks: holidays, the term's end, clashes."""

import datetime

import pytest

from attendance import services
from attendance.errors import AttendanceErrorCode as Code
from attendance.models import ClassSession, TermHoliday
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from tests.factories import ClassSessionFactory, SectionFactory, SectionGroupFactory, TermFactory, UserFactory

pytestmark = pytest.mark.django_db
MON = datetime.date(2026, 9, 14)  # a Monday, the term's first day


@pytest.fixture
def section(settings):
    settings.TIME_ZONE = "UTC"
    term = TermFactory(start_date=MON, end_date=datetime.date(2026, 10, 30), add_drop_deadline=MON)
    return SectionFactory(term=term)


def series(section, **kwargs):
    values = {"first_date": MON, "start_time": datetime.time(10, 0), "duration": datetime.timedelta(minutes=90)}
    return services.class_session_series_create(section=section, **values | kwargs)


def days(sessions):
    return [s.starts_at.date() for s in sessions]


def test_several_weekdays_each_week(section):
    sessions = series(section, weekdays=[0, 2], until=datetime.date(2026, 9, 27))
    assert days(sessions) == [MON, MON + datetime.timedelta(days=2), MON + datetime.timedelta(days=7),
                              MON + datetime.timedelta(days=9)]  # fmt: skip
    assert len({s.series for s in sessions}) == 1


def test_every_two_weeks_counts_weeks_from_the_first_date(section):
    # First date a Wednesday: Monday of that week is before it and skipped; then every other week.
    wednesday = MON + datetime.timedelta(days=2)
    sessions = series(section, first_date=wednesday, weekdays=[0, 2], every_weeks=2)
    assert days(sessions) == [
        wednesday,
        MON + datetime.timedelta(weeks=2),
        wednesday + datetime.timedelta(weeks=2),
        MON + datetime.timedelta(weeks=4),
        wednesday + datetime.timedelta(weeks=4),
        MON + datetime.timedelta(weeks=6),
        wednesday + datetime.timedelta(weeks=6),
    ]


def test_holidays_skipped_and_the_term_end_is_the_last_day(section):
    TermHoliday.objects.create(term=section.term, date=MON + datetime.timedelta(days=9), name="Holiday")
    sessions = series(section, weekdays=[4, 2], until=datetime.date(2027, 1, 31))
    assert MON + datetime.timedelta(days=9) not in days(sessions)
    assert max(days(sessions)) == datetime.date(2026, 10, 30)  # a Friday, the term's last day
    assert len(sessions) == 7 * 2 - 1


def test_default_weekday_is_the_first_dates(section):
    assert {day.weekday() for day in days(series(section))} == {0}


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"weekdays": []}, Code.SERIES_INVALID),
        ({"weekdays": [7]}, Code.SERIES_INVALID),
        ({"every_weeks": 5}, Code.SERIES_INVALID),
        ({"every_weeks": 0}, Code.SERIES_INVALID),
        ({"first_date": datetime.date(2026, 11, 2)}, Code.SESSION_TIME_INVALID),
    ],
)
def test_invalid_series_is_refused_and_writes_nothing(section, kwargs, code):
    with pytest.raises(ServiceError) as error:
        series(section, **kwargs)
    assert error.value.code == code
    assert not ClassSession.objects.exists()


def test_a_clash_with_an_existing_session_creates_none(section):
    start = datetime.datetime.combine(MON + datetime.timedelta(weeks=3), datetime.time(10, 0), tzinfo=datetime.UTC)
    ClassSessionFactory(section=section, starts_at=start)
    with pytest.raises(ServiceError) as error:
        series(section, weekdays=[0, 3])
    assert error.value.code == Code.SESSION_DUPLICATE and "05 Oct 2026" in error.value.detail
    assert ClassSession.objects.count() == 1


def test_a_groups_series_clashes_only_with_that_groups_sessions(section):
    lab_a, lab_b = SectionGroupFactory(section=section), SectionGroupFactory(section=section)
    series(section, group=lab_a)
    with pytest.raises(ServiceError):
        series(section, group=lab_a)
    assert len(series(section, group=lab_b)) == 7  # same times, another group: fine
    assert len(series(section)) == 7  # and the whole section's
    assert ClassSession.objects.filter(group=lab_a).count() == 7


def test_a_group_of_another_section_is_refused(section):
    with pytest.raises(ServiceError) as error:
        series(section, group=SectionGroupFactory())
    assert error.value.code == Code.GROUP_INVALID
    assert not ClassSession.objects.exists()


def test_the_series_page_takes_weekdays_and_interval(client, section):
    lecturer = UserFactory(roles=["lecturer"])
    section.lecturers.add(lecturer)
    client.force_login(lecturer)
    url = f"/attendance/sections/{section.pk}/sessions/series/"
    data = {"series-first_date": "2026-09-14", "series-start_time": "10:00", "series-duration_minutes": "90",
            "series-weekdays": ["0", "3"], "series-every_weeks": "2", "series-late_after_minutes": "10"}  # fmt: skip
    assert client.post(url, data).status_code == 302
    assert {d.weekday() for d in days(ClassSession.objects.all())} == {0, 3}
    assert ClassSession.objects.count() == 8  # weeks 1, 3, 5, 7 of the term
    again = client.post(url, data)
    assert again.status_code == 200 and "already has a session on" in again.content.decode()
    assert ClassSession.objects.count() == 8
    bad = client.post(url, data | {"series-every_weeks": "9"})
    assert bad.status_code == 200 and ClassSession.objects.count() == 8


def test_cancelling_a_series_cancels_only_its_scheduled_sessions_from_the_date(section):
    sessions = series(section)  # 7 Mondays
    other = series(section, start_time=datetime.time(14, 0))
    ClassSession.objects.filter(pk=sessions[0].pk).update(state=ClassSession.State.CLOSED)
    ClassSession.objects.filter(pk=sessions[1].pk).update(state=ClassSession.State.OPEN)
    result = services.class_session_series_cancel(
        series=sessions[0].series, section=section, actor=None, reason="Lecturer on leave", from_date=days(sessions)[0]
    )
    assert len(result.cancelled) == 5 and {s.pk for s in result.kept} == {sessions[0].pk, sessions[1].pk}
    states = dict(ClassSession.objects.filter(series=sessions[0].series).values_list("pk", "state"))
    assert states[sessions[0].pk] == "closed" and states[sessions[1].pk] == "open"
    assert [states[s.pk] for s in sessions[2:]] == ["cancelled"] * 5
    assert not ClassSession.objects.filter(series=other[0].series, state=ClassSession.State.CANCELLED).exists()
    assert AuditLogEntry.objects.filter(verb="class_session.cancelled").count() == 5
    assert AuditLogEntry.objects.filter(verb="class_session_series.cancelled", reason="Lecturer on leave").exists()


def test_cancelling_a_series_from_a_date_leaves_the_earlier_sessions(section):
    sessions = series(section)
    result = services.class_session_series_cancel(
        series=sessions[0].series, section=section, actor=None, reason="Moved", from_date=days(sessions)[3]
    )
    assert [s.pk for s in result.cancelled] == [s.pk for s in sessions[3:]]
    assert ClassSession.objects.filter(state=ClassSession.State.SCHEDULED).count() == 3


@pytest.mark.parametrize(
    "reason, other_section, code", [(" ", False, Code.REASON_REQUIRED), ("x", True, Code.SERIES_INVALID)]
)
def test_an_invalid_series_cancellation_writes_nothing(section, reason, other_section, code):
    sessions = series(section)
    target = SectionFactory(term=section.term) if other_section else section
    with pytest.raises(ServiceError) as raised:
        services.class_session_series_cancel(series=sessions[0].series, section=target, actor=None, reason=reason)
    assert raised.value.code == code
    assert not ClassSession.objects.filter(state=ClassSession.State.CANCELLED).exists()


def test_the_sessions_page_confirms_then_cancels_a_series(client, section):
    lecturer = UserFactory(roles=["lecturer"])
    section.lecturers.add(lecturer)
    client.force_login(lecturer)
    sessions = series(section)
    ClassSession.objects.filter(pk=sessions[0].pk).update(state=ClassSession.State.CLOSED)
    page = client.get(f"/attendance/sections/{section.pk}/sessions/").content.decode()
    assert "6 sessions still scheduled" in page
    url = f"/attendance/sections/{section.pk}/sessions/series/cancel/"
    data = {"series": str(sessions[0].series), "reason": "Strike"}
    preview = client.post(url, data)
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "6 scheduled sessions will be cancelled" in body and "1 session already open, held or not taken" in body
    assert not ClassSession.objects.filter(state=ClassSession.State.CANCELLED).exists()
    done = client.post(url, data | {"confirmed": "on"}, follow=True)
    assert "Cancelled 6 sessions." in done.content.decode()
    assert ClassSession.objects.filter(state=ClassSession.State.CANCELLED).count() == 6
    missing_reason = client.post(url, {"series": str(sessions[0].series), "confirmed": "on"})
    assert missing_reason.status_code == 200 and "Nothing was saved" in missing_reason.content.decode()


def test_another_lecturer_cannot_cancel_a_series(client, section):
    sessions = series(section)
    client.force_login(UserFactory(roles=["lecturer"]))
    url = f"/attendance/sections/{section.pk}/sessions/series/cancel/"
    response = client.post(url, {"series": str(sessions[0].series), "reason": "x", "confirmed": "on"})
    assert response.status_code == 404
    assert not ClassSession.objects.filter(state=ClassSession.State.CANCELLED).exists()


def test_the_sessions_page_does_not_grow_queries_with_series(client, section, django_assert_max_num_queries):
    lecturer = UserFactory(roles=["lecturer"])
    section.lecturers.add(lecturer)
    client.force_login(lecturer)
    series(section)
    with django_assert_max_num_queries(30) as first:
        client.get(f"/attendance/sections/{section.pk}/sessions/")
    for hour in (12, 14, 16):
        series(section, start_time=datetime.time(hour, 0))
    with django_assert_max_num_queries(len(first.captured_queries)):
        client.get(f"/attendance/sections/{section.pk}/sessions/")
