"""Shared checks of Django admin changelists."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _fill(model, build_one, rows: int) -> None:
    while model.objects.count() < rows:
        build_one()


def assert_changelist_queries_do_not_grow(client, model, build_one) -> None:
    """The changelist costs as many queries with 100 rows as with 5 (no query per row)."""
    url = changelist_url(model)
    _fill(model, build_one, 5)
    assert client.get(url).status_code == 200  # warms per-process caches (content types)
    with CaptureQueriesContext(connection) as at_5:
        response = client.get(url)
    assert len(response.context["cl"].result_list) == 5
    _fill(model, build_one, 100)
    with CaptureQueriesContext(connection) as at_100:
        response = client.get(url)
    assert len(response.context["cl"].result_list) == 100
    assert len(at_100) == len(at_5), "\n".join(query["sql"] for query in at_100.captured_queries)
