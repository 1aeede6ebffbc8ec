"""Read a secret from the environment, or from a file named by <NAME>_FILE (Docker/Kubernetes secrets)."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured


def read_secret(env: environ.Env, name: str, default: str | None = None) -> str:
    file_name = env.str(f"{name}_FILE", default="")
    if file_name:
        path = Path(file_name)
        if not path.is_file():
            raise ImproperlyConfigured(f"{name}_FILE points to {file_name}, which is not a readable file.")
        return path.read_text().strip()
    if default is None:
        return env.str(name)
    return env.str(name, default=default)
