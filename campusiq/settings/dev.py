"""Local development: `make run`. Safe defaults, readable console logs."""

from .base import *  # noqa: F403
from .base import LOGGING, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-used-in-production-0123456789")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

if env.str("LOG_FORMAT", default="console") == "console":
    LOGGING["handlers"]["stdout"]["formatter"] = "console"
