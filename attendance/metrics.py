"""The check-in metrics (campusiq_checkins, campusiq_checkin_latency_seconds), served by /metrics
(campusiq.core.metrics) with the process's other samples."""

import functools

from prometheus_client import Counter, Histogram

from campusiq.core.errors import ServiceError

CHECK_INS = Counter("campusiq_checkins", "Check-ins by result: created, already, or the refusal code.", ["result"])
CHECK_IN_LATENCY = Histogram(
    "campusiq_checkin_latency_seconds",
    "Time to answer a check-in, in the view.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def check_ins_counted(*, successes: bool = True):
    """Counts each call's result in campusiq_checkins: a refusal by its code, and (with `successes`)
    "created" or "already" from the CheckIn returned."""

    def decorate(function):
        @functools.wraps(function)
        def counted(*args, **kwargs):
            try:
                result = function(*args, **kwargs)
            except ServiceError as error:
                CHECK_INS.labels(error.code).inc()
                raise
            if successes:
                CHECK_INS.labels("created" if result.created else "already").inc()
            return result

        return counted

    return decorate
