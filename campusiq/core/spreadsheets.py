"""The XLSX format of tablib, imported on first use rather than when Django starts.

django-import-export decides at import time which tablib formats work by loading each one, and loading
XLSX imports openpyxl (and numpy through it): about 0.1 s that every manage.py command and web process
paid at start-up, though only an import or export of a spreadsheet needs it. `xlsx_load_on_first_use`
registers XLSX again as a stand-in that loads the real format the first time anything is asked of it;
campusiq/core/apps.py calls it before the admin modules (and so import_export.admin) are imported.
gunicorn's master still imports openpyxl before forking (campusiq/wsgi.py).
"""

from importlib.util import find_spec

XLSX_FORMAT = "tablib.formats._xlsx.XLSXFormat"


class LazyFormat:
    """A tablib format given by its dotted path, imported on the first attribute asked of it."""

    def __init__(self, dotted_path: str):
        self._dotted_path = dotted_path
        self._loaded = None

    def __getattr__(self, name: str):
        if name.startswith("_"):  # our own attributes (and copy/pickle probes) never load the format
            raise AttributeError(name)
        if self._loaded is None:
            from tablib.formats import load_format_class

            self._loaded = load_format_class(self._dotted_path)
        return getattr(self._loaded, name)


def xlsx_load_on_first_use() -> None:
    """Re-registers tablib's XLSX format (same key, same place in the detection order) as a LazyFormat."""
    if find_spec("openpyxl") is None:  # tablib then leaves XLSX out, and so do we
        return
    from tablib.formats import registry

    registry.register("xlsx", LazyFormat(XLSX_FORMAT))
