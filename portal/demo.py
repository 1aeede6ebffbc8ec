"""The demo campus, put together (docs/DEMO_DATA.md): students.demo writes the catalogue, people,
enrollments and grades term by term, and after each term attendance.demo writes its sessions and
records from the same seed, in one transaction. The rows are those the two wrote when one called the
other; the composition lives here, above both."""

import datetime

from attendance.demo import demo_attendance_counts, demo_attendance_write
from students.demo import DemoReport
from students.demo import demo_data_seed as campus_demo_seed


def demo_data_seed(*, size: str = "small", seed: int = 2026, today: datetime.date | None = None) -> DemoReport:
    """Loads the demo campus with its attendance history (idempotent; students.demo.demo_data_seed)."""
    return campus_demo_seed(
        size=size, seed=seed, today=today, term_writers=(demo_attendance_write,), counters=(demo_attendance_counts,)
    )
