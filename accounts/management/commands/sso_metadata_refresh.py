import datetime

from django.core.management.base import BaseCommand, CommandError

from accounts.sso.config import sso_providers
from accounts.sso.metadata import MetadataRefresh, saml_metadata_refresh_due


class Command(BaseCommand):
    help = (
        "Fetches and checks the metadata of each SAML provider read from a URL whose stored copy is due "
        "(older than its metadata_refresh_hours), and says what it did. Fails if a refresh failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", help="Only this provider (its slug in SSO_CONFIG_FILE).")
        parser.add_argument("--force", action="store_true", help="Refresh even a copy that is not due yet.")

    def handle(self, *args, provider: str | None = None, force: bool = False, **options):
        configured = sso_providers().get(provider) if provider else None
        if provider and (configured is None or configured.protocol != "saml" or not configured.idp_metadata_remote):
            raise CommandError(f"No SAML provider {provider!r} reads its metadata from a URL.")
        refreshes = saml_metadata_refresh_due(slug=provider, force=force)
        if not refreshes:
            self.stdout.write("No SAML provider reads its metadata from a URL: nothing to refresh.")
        for refresh in refreshes:
            self.stdout.write(f"{refresh.provider}: {_said(refresh)}")
        if failed := [refresh.provider for refresh in refreshes if refresh.outcome == "failed"]:
            raise CommandError(f"Refresh failed for {', '.join(failed)}.")


def _said(refresh: MetadataRefresh) -> str:
    copy = refresh.metadata
    if refresh.outcome == "failed":
        kept = f"kept the copy fetched {_when(copy.fetched_at)}" if copy else "no copy is stored yet"
        return f"failed ({refresh.reason}); {kept}"
    what = {"stored": "stored a new copy", "unchanged": "fetched again, unchanged", "fresh": "fresh, skipped"}
    until = _when(copy.valid_until) if copy.valid_until else "not given"
    return f"{what[refresh.outcome]}: sha256 {copy.sha256}, fetched {_when(copy.fetched_at)}, valid until {until}"


def _when(moment: datetime.datetime) -> str:
    return f"{moment.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC"
