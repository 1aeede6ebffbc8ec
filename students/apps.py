from django.apps import AppConfig


class StudentsConfig(AppConfig):
    name = "students"
    verbose_name = "Campus"

    def ready(self) -> None:
        from students.exports import campus_sections_register

        campus_sections_register()
