"""Error tracking (Sentry) and distributed tracing (OpenTelemetry), each on only when configured.

`telemetry_start()` runs once per process from CoreConfig.ready(): in a gunicorn worker, a Celery
worker, a management command. Off (no SENTRY_DSN, no OTEL_EXPORTER_OTLP_ENDPOINT), neither
sentry_sdk nor opentelemetry is imported, so being off costs nothing. docs/OPERATIONS.md, "Error
tracking and tracing".
"""

import weakref

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from campusiq.core.logging import redact_value, trace_ids_enable
from campusiq.core.request_id import current_request_id

log = structlog.get_logger(__name__)

# What Sentry keeps of an event: never a request body, cookie, header value or frame's locals.
SENTRY_REQUEST_KEPT = ("url", "method")
_started = False


def telemetry_start() -> None:
    global _started
    if _started:
        return
    _started = True
    if settings.SENTRY_DSN:
        _sentry_start()
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        _tracing_start()


# --- Sentry -----------------------------------------------------------------------------------------


def _sentry_start() -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.SENTRY_DSN,
        environment=settings.SENTRY_ENVIRONMENT,
        release=settings.CAMPUSIQ_RELEASE or None,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(),
            # Errors logged with exc_info become events; lower levels are not sent as breadcrumbs.
            LoggingIntegration(level=None, event_level="ERROR"),
        ],
        send_default_pii=False,  # no user email, IP address, cookies or headers
        include_local_variables=False,  # a frame's locals may hold a password
        max_request_body_size="never",
        max_breadcrumbs=0,  # log lines and queries as breadcrumbs would carry what the logs redact
        traces_sample_rate=0,  # tracing is OpenTelemetry's job
        before_send=sentry_event_scrubbed,
    )
    log.info("sentry_started", environment=settings.SENTRY_ENVIRONMENT, release=settings.CAMPUSIQ_RELEASE)


def sentry_event_scrubbed(event: dict, hint: dict | None = None) -> dict:
    """Every event, last thing before it leaves: the request id as a tag, the user as an id only, the
    request reduced to its URL and method, and every string redacted as the logs are."""
    request_id = current_request_id()  # a request's, or a task's (bound by campusiq.core.signals)
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    user_id = (event.get("user") or {}).get("id")
    event["user"] = {"id": user_id} if user_id is not None else {}
    if "request" in event:
        event["request"] = {key: event["request"][key] for key in SENTRY_REQUEST_KEPT if key in event["request"]}
    event.pop("extra", None)  # logging's extra fields
    return redact_value(event)


class SentryUserMiddleware:
    """With Sentry on: an event raised while serving a request names who made it, by id. Read when the
    event is built (the user is known by then, API token users included), never resolved here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        import sentry_sdk

        from campusiq.core.middleware import resolved_user_id

        served = weakref.ref(request)

        def user_id_added(event: dict, hint: dict) -> dict:
            user_id = resolved_user_id(served()) if served() is not None else None
            if user_id is not None:
                event["user"] = {"id": str(user_id)}
            return event

        # Sentry's Django integration gives each request an isolation scope of its own.
        sentry_sdk.get_isolation_scope().add_event_processor(user_id_added)
        return self.get_response(request)


# --- OpenTelemetry ----------------------------------------------------------------------------------


def _tracing_start() -> None:
    """Spans for each request (Django), its queries (psycopg) and its Celery tasks (publish and run, in one
    trace), exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT in batches from a background thread.
    The SDK reads the OTEL_* variables itself (service name, sampler, headers, batch sizes)."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: "campusiq", SERVICE_VERSION: settings.CAMPUSIQ_RELEASE or "unknown"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(redacting_exporter(OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    # Probes and scrapes every few seconds are not worth a trace each.
    DjangoInstrumentor().instrument(excluded_urls="health/,metrics")
    PsycopgInstrumentor().instrument(enable_commenter=False)
    CeleryInstrumentor().instrument()
    trace_ids_enable(lambda: trace.get_current_span().get_span_context())
    log.info("tracing_started", endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT)


def redacting_exporter(exporter):
    """`exporter`, sent each span with its attributes, events (a recorded exception's message and
    stack) and status redacted as the logs are: an exception's message may quote a password."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Status

    def redacted(span: ReadableSpan) -> ReadableSpan:
        return ReadableSpan(
            name=span.name, context=span.context, parent=span.parent, resource=span.resource,
            attributes=redact_value(dict(span.attributes or {})),
            events=[Event(e.name, redact_value(dict(e.attributes or {})), e.timestamp) for e in span.events],
            links=span.links, kind=span.kind, instrumentation_scope=span.instrumentation_scope,
            status=Status(span.status.status_code, redact_value(span.status.description)),
            start_time=span.start_time, end_time=span.end_time,
        )  # fmt: skip

    class RedactingSpanExporter(SpanExporter):
        def export(self, spans):
            return exporter.export([redacted(span) for span in spans])

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)

    return RedactingSpanExporter()
