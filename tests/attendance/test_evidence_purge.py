"""Check-in evidence (IP address, user agent, device id) is erased after ATTENDANCE_EVIDENCE_RETENTION_DAYS
(180 by default) by a nightly Celery beat task, everywhere it was copied, and nothing else is touched."""

import datetime

import pytest
import time_machine
from django.conf import settings as django_settings

from attendance import services, tasks
from attendance.models import AttendanceRecord, DeviceSighting, ProxyFlag
from campusiq.celery import app
from tests.factories import AttendanceRecordFactory, ClassSessionFactory, DeviceSightingFactory, ProxyFlagFactory

pytestmark = pytest.mark.django_db

CHECKED_IN = datetime.datetime(2026, 9, 14, 10, 2, tzinfo=datetime.UTC)


@pytest.fixture
def record():
    record = AttendanceRecordFactory(
        session=ClassSessionFactory(state="closed"), ip="203.0.113.7", user_agent="Phone/1.0", device_id="dev-a"
    )
    ProxyFlagFactory(record=record, kind="off_campus", detail="Address 203.0.113.7 is outside the campus networks.")
    ProxyFlagFactory(record=record, kind="shared_device", detail="This device already checked in another student here.")
    DeviceSightingFactory(student=record.student, device_id="dev-a", first_seen=CHECKED_IN, last_seen=CHECKED_IN)
    return record


def evidence(record) -> tuple:
    record.refresh_from_db()
    return record.ip, record.user_agent, record.device_id


def purge_on(day: datetime.datetime) -> int:
    with time_machine.travel(day, tick=False):
        return services.attendance_evidence_purge()


def test_the_default_retention_is_180_days_and_the_purge_runs_nightly_in_beat():
    # The test environment sets no ATTENDANCE_EVIDENCE_RETENTION_DAYS: this is the default.
    assert django_settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS == 180
    [entry] = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "attendance.evidence_purge"]
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})
    assert "attendance.evidence_purge" in app.tasks  # registered, so beat's message finds a worker


def test_evidence_is_kept_until_the_retention_period_ends(record):
    assert purge_on(CHECKED_IN + datetime.timedelta(days=179, hours=23)) == 0
    assert evidence(record) == ("203.0.113.7", "Phone/1.0", "dev-a")
    assert DeviceSighting.objects.filter(device_id="dev-a").exists()
    assert ProxyFlag.objects.get(record=record, kind="off_campus").detail.startswith("Address 203.0.113.7")


def test_after_it_the_address_browser_and_device_are_erased_everywhere(record):
    updated_before = record.updated_at
    assert purge_on(CHECKED_IN + datetime.timedelta(days=180, minutes=1)) == 1
    assert evidence(record) == (None, "", "")
    assert not DeviceSighting.objects.filter(student=record.student).exists()
    flags = dict(ProxyFlag.objects.filter(record=record).values_list("kind", "detail"))
    assert flags == {"off_campus": services.OFF_CAMPUS_PURGED_DETAIL,
                     "shared_device": "This device already checked in another student here."}  # fmt: skip
    # The attendance itself stays; only the evidence goes. updated_at moves so API syncs erase their copy.
    assert (record.status, record.method, record.voided) == ("present", "qr", False)
    assert record.updated_at > updated_before


def test_the_purge_is_idempotent(record):
    later = CHECKED_IN + datetime.timedelta(days=200)
    assert purge_on(later) == 1
    record.refresh_from_db()
    state = (record.updated_at, list(ProxyFlag.objects.values_list("pk", "detail")), DeviceSighting.objects.count())
    assert purge_on(later + datetime.timedelta(days=1)) == 0
    record.refresh_from_db()
    assert (
        record.updated_at,
        list(ProxyFlag.objects.values_list("pk", "detail")),
        DeviceSighting.objects.count(),
    ) == state


def test_a_device_still_in_use_is_remembered(record):
    DeviceSighting.objects.filter(device_id="dev-a").update(last_seen=CHECKED_IN + datetime.timedelta(days=100))
    purge_on(CHECKED_IN + datetime.timedelta(days=181))
    assert evidence(record) == (None, "", "")  # the old check-in's evidence goes
    assert DeviceSighting.objects.filter(device_id="dev-a").exists()  # the device seen 81 days ago stays


def test_the_retention_is_configurable(record, settings):
    settings.ATTENDANCE_EVIDENCE_RETENTION_DAYS = 30
    assert purge_on(CHECKED_IN + datetime.timedelta(days=29)) == 0
    assert purge_on(CHECKED_IN + datetime.timedelta(days=31)) == 1
    assert evidence(record) == (None, "", "")


def test_only_old_check_ins_are_touched(record):
    recent = AttendanceRecordFactory(
        session=ClassSessionFactory(
            state="closed",
            starts_at=CHECKED_IN + datetime.timedelta(days=150),
            ends_at=CHECKED_IN + datetime.timedelta(days=150, hours=1),
        ),
        ip="198.51.100.2",
        user_agent="Laptop",
        device_id="dev-b",
    )
    assert purge_on(CHECKED_IN + datetime.timedelta(days=190)) == 1
    assert evidence(recent) == ("198.51.100.2", "Laptop", "dev-b")
    assert AttendanceRecord.objects.filter(ip=None).count() == 1


def test_the_beat_task_runs_the_purge(record):
    with time_machine.travel(CHECKED_IN + datetime.timedelta(days=365), tick=False):
        assert tasks.attendance_evidence_purge.delay().get() == 1
    assert evidence(record) == (None, "", "")
