from django.urls import path

from campusiq.core import apis

urlpatterns = [
    path("", apis.ApiRootApi.as_view(), name="api-root"),
    path("me/", apis.MeApi.as_view(), name="api-me"),
    path("import-jobs/<int:job_id>/progress/", apis.ImportJobProgressApi.as_view(), name="import-job-progress"),
]
