"""Prints what the API fuzzing did (tests/security/fuzzing.py) at the end of the pytest run."""

from tests.security import fuzzing


def pytest_terminal_summary(terminalreporter):
    # The runs that check the fuzzer itself (on one operation) are not worth a line.
    reports = [report for report in fuzzing.REPORTS if report.only is None]
    if reports:
        terminalreporter.section("API fuzzing (schemathesis)")
        for report in reports:
            terminalreporter.write_line(report.summary())
