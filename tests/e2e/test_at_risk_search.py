"""Headless Chromium: an advisor searches the at-risk list. On a 1280x800 screen the list shows at least
ten students, one line each; a search by student number and one by name each find the one advisee; the
factors open from the row, by keyboard too. The Content Security Policy holds throughout."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.e2e.test_at_risk import console_of
from tests.e2e.test_portal import assert_no_csp_violation, sign_in
from tests.factories import RiskScoreFactory, ScoringRunFactory, StudentFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREEN = {"width": 1280, "height": 800}
FACTORS = [
    "attendance over the last 4 weeks: 54%; campus median 88%",
    "running average of graded work: 41%; campus median 68%",
    "assessments missed this term: 3; campus median 0",
]


def factors(texts: list[str]) -> list[dict]:
    return [{"feature": f"f{n}", "value": 0.5, "contribution": 0.5, "text": text} for n, text in enumerate(texts)]


@pytest.fixture
def advisees(this_term):
    advisor = UserFactory(roles=[Role.ADVISOR], email="adele@campus.example", first_name="Adele", last_name="Adams")
    run = ScoringRunFactory(term=this_term, as_of=timezone.now() - datetime.timedelta(hours=6))
    for index in range(14):
        student = StudentFactory(
            advisor=advisor,
            student_number=f"S20001{index:02d}",
            user__first_name=f"Student{index:02d}",
            user__last_name="Example",
        )
        RiskScoreFactory(
            run=run, student=student, probability=0.9 - index * 0.02, band="high", factors=factors(FACTORS)
        )
    zofia = StudentFactory(
        advisor=advisor, student_number="S3000007", user__first_name="Zofia", user__last_name="Zielinska"
    )
    RiskScoreFactory(run=run, student=zofia, probability=0.42, band="medium", factors=factors(FACTORS[::-1]))
    someone_elses = StudentFactory(
        advisor=UserFactory(roles=[Role.ADVISOR]), student_number="S3000008", user__first_name="Zora"
    )
    RiskScoreFactory(run=run, student=someone_elses, probability=0.95, band="high")
    return {"zofia": zofia}


def table_rows(page: Page):
    return page.get_by_role("region", name="Risk scores").locator("tbody tr")


def test_an_advisor_searches_the_at_risk_list(page: Page, live_server, advisees):
    console = console_of(page)
    page.set_viewport_size(SCREEN)
    page.goto(live_server.url + "/portal/at-risk/")
    sign_in(page, "adele@campus.example")
    page.wait_for_url("**/portal/at-risk/")
    rows = table_rows(page)
    expect(rows).to_have_count(15)

    # One line a student: every row as tall as the first, and ten or more inside the screen unscrolled.
    boxes = [rows.nth(index).bounding_box() for index in range(15)]
    heights = {round(box["height"]) for box in boxes}
    assert max(heights) <= 40 and max(heights) - min(heights) <= 1, heights
    visible = [box for box in boxes if box["y"] + box["height"] <= SCREEN["height"]]
    assert len(visible) >= 10, [round(box["y"]) for box in boxes]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # Every column in view, none hidden behind the table's own sideways scroll.
    region = page.get_by_role("region", name="Risk scores")
    assert region.evaluate("box => box.scrollWidth <= box.clientWidth")

    # By student number: the one advisee.
    search = page.get_by_label("Name or student number")
    search.fill("S3000007")
    search.press("Enter")
    page.wait_for_url("**/portal/at-risk/?*q=S3000007*")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Zofia Zielinska")
    expect(search).to_have_value("S3000007")

    # By name, in any case, across first and last name; another advisor's Zora never shows.
    search.fill("zofia ziel")
    search.press("Enter")
    page.wait_for_url("**/portal/at-risk/?*q=zofia+ziel*")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("Zofia Zielinska")
    expect(row).to_contain_text("42 %")
    search.fill("zo")
    search.press("Enter")
    page.wait_for_url("**/portal/at-risk/?*q=zo*")
    expect(rows).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("Zora")

    # The top factor is the summary; the others open from it (here by keyboard).
    summary = row.locator("summary")
    expect(summary).to_contain_text(FACTORS[2])
    expect(summary).to_contain_text("(+2 more)")
    second = row.get_by_text(FACTORS[1])
    expect(second).to_be_hidden()
    summary.focus()
    page.keyboard.press("Enter")
    expect(second).to_be_visible()
    expect(row.get_by_text(FACTORS[0])).to_be_visible()
    summary.click()
    expect(second).to_be_hidden()

    # Nobody matches: the page says so; clearing brings everyone back.
    search.fill("nobody-like-this")
    search.press("Enter")
    expect(page.get_by_text("No student matches “nobody-like-this” with these filters.")).to_be_visible()
    page.get_by_role("link", name="Clear filters").click()
    expect(rows).to_have_count(15)
    assert_no_csp_violation(console)
