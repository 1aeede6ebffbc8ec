from rest_framework.pagination import CursorPagination, PageNumberPagination


class CappedPageNumberPagination(PageNumberPagination):
    """`?page=N&page_size=M`; page_size is capped so no request can ask for the whole table."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class SyncCursorPagination(CursorPagination):
    """For the large collections: a stable cursor over (updated_at, id), so a BI tool can sync
    incrementally with `?updated_since=` and follow `next` until it is null, even while rows change."""

    ordering = ("updated_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
