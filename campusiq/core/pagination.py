from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


def _positive_whole(request, name: str) -> None:
    """A page or page size given must be a whole number from 1 (the schema says so): 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ValidationError({name: "Give a whole number from 1, or leave it out."}, code="invalid")


class StrictPageSize:
    def get_page_size(self, request):
        _positive_whole(request, self.page_size_query_param)
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] in (self.page_size_query_param, getattr(self, "page_query_param", None)):
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters


class CappedPageNumberPagination(StrictPageSize, PageNumberPagination):
    """`?page=N&page_size=M`; page_size is capped so no request can ask for the whole table."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param) not in self.last_page_strings:
            _positive_whole(request, self.page_query_param)
        return super().get_page_number(request, paginator)


class SyncCursorPagination(StrictPageSize, CursorPagination):
    """For the large collections: a stable cursor over (updated_at, id), so a BI tool can sync
    incrementally with `?updated_since=` and follow `next` until it is null, even while rows change."""

    ordering = ("updated_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
