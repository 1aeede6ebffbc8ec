"""The sign-on metrics: SAML metadata refreshes by provider and outcome (campusiq_saml_metadata_refreshes),
and, read at scrape time, when each provider's stored metadata was fetched and until when it is valid."""

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from accounts.models import SamlMetadata

SAML_METADATA_REFRESHES = Counter(
    "campusiq_saml_metadata_refreshes",
    "SAML metadata refreshes by provider and outcome: stored, unchanged, or the failure's reason.",
    ["provider", "outcome"],
)


def saml_metadata_metrics():
    fetched = GaugeMetricFamily(
        "campusiq_saml_metadata_fetched_timestamp_seconds",
        "When each SAML provider's stored metadata was last fetched and checked.",
        labels=["provider"],
    )
    valid_until = GaugeMetricFamily(
        "campusiq_saml_metadata_valid_until_timestamp_seconds",
        "The validUntil of each SAML provider's stored metadata (absent: none given).",
        labels=["provider"],
    )
    for provider, fetched_at, until in SamlMetadata.objects.values_list("provider", "fetched_at", "valid_until"):
        fetched.add_metric([provider], fetched_at.timestamp())
        if until is not None:
            valid_until.add_metric([provider], until.timestamp())
    yield fetched
    yield valid_until
