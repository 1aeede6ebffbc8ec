from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process answers. Checks no dependency: a database outage must not restart every pod."""
    return JsonResponse({"status": "ok"})
