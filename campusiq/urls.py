from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from campusiq.core import health
from campusiq.core.metrics import metrics_view
from portal import views as portal_views

# Swagger UI and ReDoc set styles inline and ReDoc runs a worker from a blob; scripts stay 'self' only.
# These pages show our own schema, never user content.
api_docs_csp = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    # The API before the pages, attendance first: a check-in, the busiest request of the site, is
    # matched without trying every portal and admin route (paths never overlap, so order is free).
    path("api/v1/", include("attendance.api_urls")),
    path("api/v1/", include("campusiq.core.api_urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("students.api_urls")),
    path("api/v1/", include("predictions.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("portal/", include("portal.urls")),
    path("portal/", include("predictions.urls")),
    path("", include("attendance.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs_csp(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc/", api_docs_csp(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
]

handler400 = "campusiq.core.views.bad_request"
handler403 = "campusiq.core.views.permission_denied"
handler404 = "campusiq.core.views.page_not_found"
handler500 = "campusiq.core.views.server_error"
