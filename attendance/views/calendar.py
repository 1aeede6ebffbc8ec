"""Private calendar feeds: the page where a student or lecturer makes (or revokes) the URL of their
timetable feed, and the feed itself, which calendar clients fetch with nothing but that URL."""

import hashlib

from django.contrib import messages
from django.db.models import Count, Max, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date, quote_etag
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import role_required
from accounts.roles import Role
from attendance.calendar import timetable_ics
from attendance.limits import person_for_user
from attendance.selectors import calendar_feed_active, calendar_sessions_for
from attendance.services import (
    calendar_feed_create,
    calendar_feed_revoke,
    calendar_feed_token_hash,
    calendar_feed_use,
)
from campusiq.core.ratelimit import RateLimit, client_network, rate_limits_enforce

calendar_owner_required = role_required(Role.STUDENT, Role.LECTURER)

# Making a new URL a few times is normal; dozens an hour is a script.
FEED_CREATE_RATE_PER_USER = "10/h"
# Calendar clients poll every few minutes to hours; a household behind one address has several.
FEED_RATE_PER_FEED = "60/h"
FEED_RATE_PER_IP = "600/h"
# Clients may reuse a copy briefly; after that the ETag makes asking again cheap.
FEED_MAX_AGE_SECONDS = 300


@never_cache  # the page shows a secret right after it is made
@require_http_methods(["GET", "POST"])
@calendar_owner_required
def calendar_feed_page(request: HttpRequest) -> HttpResponse:
    feed_url = None
    if request.method == "POST":
        rate_limits_enforce(
            [RateLimit("attendance-calendar-create", person_for_user(request.user), FEED_CREATE_RATE_PER_USER)]
        )
        _feed, token = calendar_feed_create(user=request.user)
        feed_url = request.build_absolute_uri(reverse("attendance:calendar-feed", kwargs={"token": token}))
    context = {"feed": calendar_feed_active(request.user), "feed_url": feed_url}
    return render(request, "attendance/calendar.html", context)


@require_POST
@calendar_owner_required
def calendar_feed_revoke_view(request: HttpRequest) -> HttpResponse:
    if calendar_feed_revoke(user=request.user):
        messages.success(request, _("Your calendar feed was revoked: its address no longer works."))
    else:
        messages.info(request, _("You had no calendar feed to revoke."))
    return redirect("attendance:calendar")


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The feed: the secret in the URL is the only credential (calendar clients send no cookies)."""
    rate_limits_enforce(
        [
            RateLimit("attendance-calendar-feed-token", calendar_feed_token_hash(token), FEED_RATE_PER_FEED),
            RateLimit("attendance-calendar-feed-ip", client_network(request), FEED_RATE_PER_IP),
        ]
    )
    feed = calendar_feed_use(token=token)
    if feed is None:
        raise Http404
    sessions = calendar_sessions_for(feed.user)
    # Which sessions are in it (count and sum of ids) catches a section dropped or added, which changes
    # no session's updated_at.
    latest = sessions.order_by().aggregate(count=Count("pk"), ids=Sum("pk"), changed=Max("updated_at"))
    fingerprint = f"{feed.pk}:{latest['count']}:{latest['ids']}:{latest['changed']}:{get_language()}"
    etag = quote_etag(hashlib.sha256(fingerprint.encode()).hexdigest()[:32])
    last_modified = int(latest["changed"].timestamp()) if latest["changed"] else None
    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if response is None:
        response = HttpResponse(
            timetable_ics(sessions, name=_("CampusIQ timetable")), content_type="text/calendar; charset=utf-8"
        )
        response["Content-Disposition"] = 'inline; filename="timetable.ics"'
    response["ETag"] = etag
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified)
    patch_cache_control(response, private=True, max_age=FEED_MAX_AGE_SECONDS)
    return response
