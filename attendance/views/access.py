"""Who may use which attendance page, and the objects of a page a user may act on (else 404)."""

from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.decorators import role_required
from accounts.models import User
from accounts.roles import Role
from attendance.models import ClassSession, SectionGroup
from attendance.selectors import class_session_get, section_group_get
from students.models import Section, Student
from students.selectors import section_taught_by_get, students_visible_to

lecturer_required = role_required(Role.LECTURER, staff_too=True)
student_required = role_required(Role.STUDENT)


def own_student(user: User) -> Student:
    return get_object_or_404(students_visible_to(user), user=user)


def taught_section_or_404(user: User, section_id: int) -> Section:
    try:
        return section_taught_by_get(user=user, section_id=section_id)
    except Section.DoesNotExist as missing:
        raise Http404 from missing


def taught_session_or_404(user: User, session_id: int) -> ClassSession:
    """A session of a section the user teaches (registrars and admins: any), else 404."""
    session = class_session_get(session_id=session_id)
    if session is None:
        raise Http404
    taught_section_or_404(user, session.section_id)
    return session


def taught_group_or_404(user: User, group_id: int) -> SectionGroup:
    """A group of a section the user teaches (registrars and admins: any), else 404."""
    group = section_group_get(group_id=group_id)
    if group is None:
        raise Http404
    taught_section_or_404(user, group.section_id)
    return group
