from django.apps import AppConfig


class StudentsConfig(AppConfig):
    name = "students"
    verbose_name = "Campus"

    def ready(self) -> None:
        from students.roles import role_permissions_declare

        role_permissions_declare()
