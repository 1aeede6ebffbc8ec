"""Filters shared by the API's filter sets."""

import datetime

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

# Primary keys are 64-bit (BigAutoField); SQLite cannot even compare a larger number.
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """`?student=17`: a whole, positive 64-bit id. Anything else (`1.5`, `1e40`, `-3`) answers 400
    naming the filter, instead of reaching the database (where a huge number is a 500 on SQLite)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class InstantField(IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError("Enter an instant between the years 1 and 9999.", code="invalid") from None


class InstantFilter(django_filters.IsoDateTimeFilter):
    """`?updated_since=2026-11-01T00:00:00Z`: an ISO 8601 instant, compared in UTC. Python accepts offsets
    up to ±23:59 and PostgreSQL only up to ±15:59, so an instant is never sent with the caller's offset."""

    field_class = InstantField
