from django.apps import AppConfig
from django.db.models.signals import post_save


def _forget_cached_tokens(sender, instance, **kwargs) -> None:
    from accounts.tokens import token_cache_forget_user_changed

    token_cache_forget_user_changed(user_id=instance.user_id)


def _account_of_student_number(identity):
    from students.models import Student

    student = Student.objects.select_related("user").filter(student_number=identity.student_number).first()
    return student.user if student is not None and identity.student_number else None


class StudentsConfig(AppConfig):
    name = "students"
    verbose_name = "Campus"

    def ready(self) -> None:
        from accounts.sso.services import sso_account_finder_register
        from campusiq.core.imports import import_kind_register
        from students import history_bulk
        from students.exports import campus_sections_register
        from students.roles import role_permissions_declare

        role_permissions_declare()
        campus_sections_register()
        import_kind_register(history_bulk.ENROLLMENTS)
        import_kind_register(history_bulk.GRADES)
        # Campus sign-on may link a first sign-in to the student record whose number it asserts.
        sso_account_finder_register("student_number", _account_of_student_number)
        # A student's API tokens are cached with their profile: a change to it drops them.
        post_save.connect(_forget_cached_tokens, sender="students.Student", dispatch_uid="students.forget_tokens")
