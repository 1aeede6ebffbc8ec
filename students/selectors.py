"""Reads of the campus domain. Access to people's data goes through the *_visible_to selectors, so
no view can forget the permission check: what a viewer may not see is simply not there (404)."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_roles
from students.models import Enrollment, Section, Student, Term


def _sees_everyone(user: User, roles: set[Role]) -> bool:
    return user.is_superuser or Role.REGISTRAR in roles or Role.ADMIN in roles


def students_visible_to(user: User) -> QuerySet[Student]:
    """Students the user may see: themself, their advisees, the students of sections they teach."""
    if not user.is_authenticated:
        return Student.objects.none()
    roles = user_roles(user)
    students = Student.objects.select_related("user", "program__department", "advisor")
    if _sees_everyone(user, roles):
        return students
    visible = Q(user=user)
    if Role.ADVISOR in roles:
        visible |= Q(advisor=user)
    if Role.LECTURER in roles:
        visible |= Exists(Enrollment.objects.filter(student=OuterRef("pk"), section__lecturers=user))
    return students.filter(visible)


def student_get_visible(*, viewer: User, student_id: int) -> Student:
    """One student, or Student.DoesNotExist when the viewer may not see them (answered as 404)."""
    return students_visible_to(viewer).get(pk=student_id)


def sections_taught_by(user: User) -> QuerySet[Section]:
    return Section.objects.filter(lecturers=user).select_related("course", "term")


def term_current(today=None) -> Term | None:
    """The term running today, else the most recent one that has started, else the next one."""
    from django.utils import timezone

    today = today or timezone.localdate()
    running = Term.objects.filter(start_date__lte=today, end_date__gte=today).order_by("-start_date").first()
    return running or Term.objects.filter(start_date__lte=today).first() or Term.objects.order_by("start_date").first()
