"""Uploaded CSV files in the encodings registrars' spreadsheets write: UTF-8 (with or without the BOM
Excel adds) and Windows-1252 (Excel's plain "CSV" on Windows), through the admin's import preview and
confirmation; anything else is a readable form error."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from campusiq.core.admin import ImportFileUnreadable, csv_bytes_decode
from students.models import Student
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "student_number,email,first_name,last_name,program,semester,advisor\r\n"
ROW = "S2001,joao@campus.example,João,Conceição Müller,CS,1,\r\n"


@pytest.fixture
def registrar_client(client):
    ProgramFactory(code="CS")
    client.force_login(UserFactory(roles=[Role.REGISTRAR]))
    return client


def _import(client, data: bytes):
    url = reverse("admin:students_student_import")
    upload = SimpleUploadedFile("students.csv", data, content_type="text/csv")
    preview = client.post(url, {"resource": "0", "format": "0", "import_file": upload})
    assert preview.status_code == 200
    return preview


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_a_student_file_in_each_encoding_imports_the_names_intact(registrar_client, encoding):
    preview = _import(registrar_client, (HEADER + ROW).encode(encoding))
    result = preview.context["result"]
    assert not result.has_validation_errors(), [row.error_dict for row in result.invalid_rows]
    assert not result.has_errors()

    registrar_client.post(reverse("admin:students_student_process_import"), preview.context["confirm_form"].initial)

    student = Student.objects.select_related("user").get(student_number="S2001")
    assert (student.user.first_name, student.user.last_name) == ("João", "Conceição Müller")


def test_bytes_that_are_neither_encoding_are_a_form_error_and_write_nothing(registrar_client):
    # 0x81 and 0x9d are undefined in Windows-1252 and, here, invalid UTF-8.
    preview = _import(registrar_client, HEADER.encode() + b"S2002,x@campus.example,\x81\x9d,Y,CS,1,\r\n")

    assert "neither UTF-8 nor Windows-1252" in str(preview.context["form"].errors["import_file"])
    assert not Student.objects.exists()


def test_utf8_is_preferred_when_both_would_decode():
    assert csv_bytes_decode("Conceição".encode()) == "Conceição"  # as cp1252 it would be "ConceiÃ§Ã£o"
    assert csv_bytes_decode("Conceição".encode("cp1252")) == "Conceição"
    with pytest.raises(ImportFileUnreadable):
        csv_bytes_decode(b"\x81")
