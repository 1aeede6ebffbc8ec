from django.urls import path

from accounts import apis

urlpatterns = [
    path("auth/token/", apis.TokenApi.as_view(), name="api-token"),
    path("auth/token/current/", apis.CurrentTokenApi.as_view(), name="api-token-current"),
]
