import structlog
from celery import shared_task

from accounts.sso.metadata import saml_metadata_refresh_due

log = structlog.get_logger(__name__)


@shared_task(name="accounts.sso_metadata_refresh", soft_time_limit=300, time_limit=360)
def sso_metadata_refresh() -> dict[str, str]:
    """Refreshes the metadata of each SAML provider read from a URL whose stored copy is older than its
    metadata_refresh_hours (a failure keeps the copy). Idempotent: a fresh copy is left alone."""
    outcomes = {refresh.provider: refresh.outcome for refresh in saml_metadata_refresh_due()}
    log.info("accounts.sso_metadata_refreshed", outcomes=outcomes)
    return outcomes
