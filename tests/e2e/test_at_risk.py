"""Headless Chromium through the advisor's at-risk workflow: the advisor signs in, finds their advisee
flagged on the dashboard with the reason, opens the student's risk page, records an intervention with a
note and sees it listed. The Content Security Policy must hold on every page on the way."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.roles import Role
from predictions.models import Intervention
from tests.e2e.test_portal import assert_fits_the_screen, assert_no_csp_violation, sign_in
from tests.factories import (
    RiskScoreFactory,
    ScoringRunFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
FACTOR = "attendance over the last 4 weeks: 54%; campus median 88%"


def console_of(page: Page) -> list[str]:
    """Everything the page logs, page errors included: CSP violations show up here."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(str(error)))
    return messages


@pytest.fixture
def flagged(this_term):
    advisor = UserFactory(roles=[Role.ADVISOR], email="adele@campus.example", first_name="Adele", last_name="Adams")
    ana = StudentFactory(advisor=advisor, user__first_name="Ana", user__last_name="Almeida", student_number="S1000001")
    someone_elses = StudentFactory(
        advisor=UserFactory(roles=[Role.ADVISOR]), user__first_name="Olga", user__last_name="Other"
    )
    run = ScoringRunFactory(term=this_term, as_of=timezone.now() - datetime.timedelta(hours=6))
    RiskScoreFactory(run=run, student=ana, probability=0.78, band="high")
    RiskScoreFactory(run=run, student=someone_elses, probability=0.95, band="high")
    return {"advisor": advisor, "ana": ana, "term": this_term}


def test_advisor_records_an_intervention_for_a_flagged_advisee(page: Page, live_server, flagged):
    console = console_of(page)
    ana = flagged["ana"]
    page.set_viewport_size({"width": 375, "height": 740})  # a phone
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign in").first.click()
    sign_in(page, "adele@campus.example")
    page.wait_for_url(live_server.url + "/")

    page.get_by_role("link", name="At-risk students").first.click()
    page.wait_for_url("**/portal/at-risk/")
    expect(page.get_by_role("heading", level=1)).to_have_text("At-risk students")
    row = page.get_by_role("region", name="Risk scores").get_by_role("row", name="Ana Almeida")
    expect(row).to_contain_text("78 %")
    expect(row).to_contain_text("High")
    expect(row).to_contain_text(FACTOR)
    expect(row).to_contain_text("none yet")
    expect(page.locator("main")).not_to_contain_text("Olga")
    assert_fits_the_screen(page)

    row.get_by_role("link", name="Ana Almeida").click()
    page.wait_for_url(f"**/portal/at-risk/students/{ana.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ana Almeida")
    expect(page.get_by_text(FACTOR)).to_be_visible()
    expect(page.get_by_text("No intervention recorded this term.")).to_be_visible()
    assert_fits_the_screen(page)

    # Without a kind nothing is saved and the form says why.
    page.get_by_role("button", name="Record intervention").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    assert not Intervention.objects.exists()

    page.get_by_role("group", name="What did you do?").get_by_label("Meeting").check()
    page.get_by_label("Note", exact=True).fill("Met Ana; agreed on a study plan for the next four weeks.")
    page.get_by_role("button", name="Record intervention").click()
    page.wait_for_url(f"**/portal/at-risk/students/{ana.pk}/#interventions")
    expect(page.get_by_role("status")).to_contain_text("Intervention recorded: meeting.")
    listed = page.locator(".history-list").first
    expect(listed).to_contain_text("Meeting")
    expect(listed).to_contain_text("Met Ana; agreed on a study plan for the next four weeks.")
    expect(listed).to_contain_text("Adele Adams")

    intervention = Intervention.objects.get()
    assert intervention.student_id == ana.pk and intervention.advisor == flagged["advisor"]
    assert intervention.kind == "meeting" and intervention.term == flagged["term"]
    assert intervention.risk_score is not None and intervention.risk_score.student_id == ana.pk

    # Back on the dashboard the row says an intervention exists.
    page.get_by_role("link", name="All at-risk students").click()
    expect(page.get_by_role("row", name="Ana Almeida")).to_contain_text("yes")
    assert_no_csp_violation(console)
