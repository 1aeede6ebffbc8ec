from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The top layer: pages composed from several apps (the home page, the student's dashboard, profile
    and data download) and the demo campus's orchestration. Nothing below imports it."""

    name = "portal"
