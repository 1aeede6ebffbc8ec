import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile


def csv_upload(rows: list[dict], name: str = "upload.csv") -> SimpleUploadedFile:
    """A CSV file as a browser uploads it, with the first row's keys as its header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(), content_type="text/csv")
