"""A section's allowed networks replace the campus list for its check-ins' off-campus flag."""

import datetime

import pytest

from accounts.roles import Role
from attendance import services
from attendance.errors import AttendanceErrorCode as Code
from attendance.models import SectionNetworkRule
from campusiq.core.errors import ServiceError
from campusiq.core.models import AuditLogEntry
from tests.factories import ClassSessionFactory, EnrollmentFactory, SectionNetworkRuleFactory, UserFactory

pytestmark = pytest.mark.django_db
START = datetime.datetime(2026, 9, 14, 10, 2, tzinfo=datetime.UTC)


@pytest.fixture
def session(settings):
    settings.ATTENDANCE_CAMPUS_NETWORKS = ["193.136.0.0/16"]
    return ClassSessionFactory(state="open")


def flags(session, ip):
    student = EnrollmentFactory(section=session.section).student
    return services.attendance_check_in(student=student, session=session, method="qr", scanned_at=START, ip=ip).flags


def test_the_sections_list_overrides_the_campus_list(session):
    SectionNetworkRuleFactory(section=session.section, networks=["10.20.0.0/16"])
    assert flags(session, "10.20.5.5") == []
    assert flags(session, "193.136.4.20") == ["off_campus"]  # on campus, but not this section's network


def test_an_empty_list_means_the_campus_list(session):
    SectionNetworkRuleFactory(section=session.section, networks=[])
    assert flags(session, "193.136.4.20") == []
    assert flags(session, "10.20.5.5") == ["off_campus"]


def test_another_sections_rule_changes_nothing_here(session):
    SectionNetworkRuleFactory(networks=["10.20.0.0/16"])
    assert flags(session, "10.20.5.5") == ["off_campus"]


def test_networks_are_validated_normalised_and_audited(session):
    with pytest.raises(ServiceError) as error:
        services.section_network_rule_set(section=session.section, networks="10.0.0.0/8, campus, 300.1.1.1", actor=None)
    assert error.value.code == Code.NETWORKS_INVALID and "campus, 300.1.1.1" in error.value.detail
    assert not SectionNetworkRule.objects.exists()
    rule = services.section_network_rule_set(
        section=session.section, networks="10.20.3.4/16\n2001:db8::/32 10.20.0.0/16", actor=None
    )
    assert rule.networks == ["10.20.0.0/16", "2001:db8::/32"]
    services.section_network_rule_set(section=session.section, networks="10.20.0.0/16 2001:db8::/32", actor=None)
    assert AuditLogEntry.objects.filter(verb="attendance.section_networks_set").count() == 1


def test_the_lecturer_edits_the_list_with_readable_errors(session, client):
    lecturer = UserFactory(roles=[Role.LECTURER])
    session.section.lecturers.add(lecturer)
    client.force_login(lecturer)
    url = f"/attendance/sections/{session.section.pk}/networks/"
    bad = client.post(url, {"networks": "10.0.0.0/33"})
    assert bad.status_code == 400 and "Not a network address" in bad.content.decode()
    assert not SectionNetworkRule.objects.exists()
    assert client.post(url, {"networks": "10.20.0.0/16"}).status_code == 302
    assert "10.20.0.0/16" in client.get(url).content.decode()
    assert client.post(url, {"networks": ""}).status_code == 302
    assert SectionNetworkRule.objects.get().networks == []
    client.force_login(UserFactory(roles=[Role.LECTURER]))
    assert client.post(url, {"networks": "0.0.0.0/0"}).status_code == 404
    assert SectionNetworkRule.objects.get().networks == []
