import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campusiq.settings.prod")
application = get_wsgi_application()


def _url_lookups_build(resolver) -> None:
    """Imports the URL configuration and builds its reverse lookups (every namespace) now, not in a
    worker's first request: under gunicorn's preload_app this runs once in the master, and a recycled
    worker starts ready instead of spending ~80 ms of CPU on its first request."""
    for _prefix, namespace in resolver.namespace_dict.values():
        _url_lookups_build(namespace)


_url_lookups_build(get_resolver())


def worker_imports_preload() -> None:
    """Imports what start-up leaves to the first request that needs it: scikit-learn and joblib (scoring,
    training), the OpenAPI generator's hooks (the schema), openpyxl (spreadsheet exports). deploy/gunicorn.conf.py
    calls it in the master before forking, so no worker pays ~0.7 s on its first such request. Not run at
    import: runserver imports this module too, and would pay it on every reload."""
    import drf_spectacular.hooks  # noqa: F401
    import joblib  # noqa: F401
    from tablib.formats import registry

    import predictions.pipeline  # noqa: F401

    registry.get_format("xlsx").title  # noqa: B018  (campusiq.core.spreadsheets' stand-in loads openpyxl)
