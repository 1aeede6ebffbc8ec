"""A task for the worker that tests/core/test_celery_reliability.py starts (`celery worker -I` this module).

It does real, idempotent work (closing a class session marks every missing student absent, once), then
on its first delivery stalls, as a task does when its process dies after the work but before the
acknowledgement: the test kills it there. Each run is logged to `run_log` (pid and start time)."""

import os
import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.reliability.close_session_then_stall", soft_time_limit=90, time_limit=120)
def close_session_then_stall(*, session_id: int, run_log: str) -> int:
    from attendance.models import ClassSession
    from attendance.services import class_session_close

    log = Path(run_log)
    with log.open("a") as runs:
        runs.write(f"{os.getpid()} {time.time()}\n")
    first_run = len(log.read_text().splitlines()) == 1
    marked = class_session_close(session=ClassSession.objects.get(pk=session_id), actor=None)
    if first_run:
        Path(f"{run_log}.stalled").write_text(str(os.getpid()))  # the work is committed, not acknowledged
        time.sleep(60)
    return marked
