"""The at-risk pages of the portal: advisors see their advisees only (another's is a 404), filters and
sorts change the rows, the CSV is formula-safe, bad input writes nothing, the report's numbers are
right on a hand-built case, students see their own risk only when the institution allows it, and the
list pages run the same number of queries for 3 rows as for 30."""

import csv
import datetime
import html
import io
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from predictions.models import FlagFeedback, Intervention, RiskScore, ScoringRun
from students.models import TermOutcome
from tests.factories import (
    CourseFactory,
    DepartmentFactory,
    EnrollmentFactory,
    FlagFeedbackFactory,
    InterventionFactory,
    ModelVersionFactory,
    ProgramFactory,
    RiskScoreFactory,
    ScoringRunFactory,
    SectionFactory,
    StudentFactory,
    TermOutcomeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("predictions:at-risk")
CSV_URL = reverse("predictions:at-risk-csv")
REPORT = reverse("predictions:report")
EARLIER = datetime.datetime(2026, 11, 1, 2, 0, tzinfo=datetime.UTC)
LATER = datetime.datetime(2026, 11, 2, 2, 0, tzinfo=datetime.UTC)


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def advisor():
    return UserFactory(roles=[Role.ADVISOR], first_name="Adele", last_name="Advisor")


@pytest.fixture
def other_advisor():
    return UserFactory(roles=[Role.ADVISOR], first_name="Otto", last_name="Other")


@pytest.fixture
def registrar():
    return UserFactory(roles=[Role.REGISTRAR])


@pytest.fixture
def lecturer():
    return UserFactory(roles=[Role.LECTURER])


@pytest.fixture
def model():
    return ModelVersionFactory(name="risk-2026-11-01")


@pytest.fixture
def runs(term, model):
    earlier = ScoringRunFactory(term=term, model_version=model, as_of=EARLIER)
    later = ScoringRunFactory(term=term, model_version=model, as_of=LATER)
    return earlier, later


@pytest.fixture
def campus(term, runs, advisor, other_advisor):
    """Ana (CS, high, up 20 points), Bea (CS, medium, new in the latest run), Carl (Maths, low, down 10
    points): advised by Adele. Olga (CS, high) is Otto's advisee."""
    earlier, later = runs
    cs, maths = DepartmentFactory(code="CS"), DepartmentFactory(code="MATH")
    bsc_cs, bsc_maths = ProgramFactory(code="BCS", department=cs), ProgramFactory(code="BMA", department=maths)
    section = SectionFactory(term=term, course=CourseFactory(code="CS101", department=cs))

    def student(number, first, program, advisor):
        return StudentFactory(
            student_number=number, user__first_name=first, user__last_name="Example", program=program, advisor=advisor
        )

    ana = student("S1000001", "Ana", bsc_cs, advisor)
    bea = student("S1000002", "Bea", bsc_cs, advisor)
    carl = student("S1000003", "Carl", bsc_maths, advisor)
    olga = student("S1000009", "Olga", bsc_cs, other_advisor)
    EnrollmentFactory(student=ana, section=section)
    EnrollmentFactory(student=carl, section=section, status="dropped", ended_on=term.add_drop_deadline)
    scores = {
        "ana": RiskScoreFactory(run=later, student=ana, probability=0.81, band="high", factors=factor("ana late")),
        "bea": RiskScoreFactory(run=later, student=bea, probability=0.45, band="medium", factors=factor("bea grades")),
        "carl": RiskScoreFactory(run=later, student=carl, probability=0.12, band="low", factors=[]),
        "olga": RiskScoreFactory(run=later, student=olga, probability=0.9, band="high"),
    }
    RiskScoreFactory(run=earlier, student=ana, probability=0.61, band="high")
    RiskScoreFactory(run=earlier, student=carl, probability=0.22, band="low")
    RiskScoreFactory(run=earlier, student=olga, probability=0.9, band="high")
    InterventionFactory(student=ana, term=term, advisor=advisor, kind="meeting", note="Met on Monday")
    return {"ana": ana, "bea": bea, "carl": carl, "olga": olga, "section": section, "scores": scores, "run": later}


def factor(text: str) -> list[dict]:
    return factor_list([text])


def factor_list(texts: list[str]) -> list[dict]:
    return [{"feature": "attendance_rate_4w", "value": 0.5, "contribution": 0.8, "text": text} for text in texts]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    """The page's words, tags dropped, whitespace (also non-breaking) collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def row_order(response, numbers=("S1000001", "S1000002", "S1000003", "S1000009")) -> list[str]:
    """The student numbers in the table's rows, in order (not those typed in the search box)."""
    page = response.content.decode().partition("<tbody>")[2]
    found = [(page.index(number), number) for number in numbers if number in page]
    return [number for _, number in sorted(found)]


def student_url(student, **query) -> str:
    url = reverse("predictions:student-risk", args=[student.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- Access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["predictions:at-risk", "predictions:at-risk-csv", "predictions:report"])
def test_list_pages_send_anonymous_visitors_to_sign_in(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("url_name", ["predictions:at-risk", "predictions:at-risk-csv", "predictions:report"])
def test_list_pages_refuse_lecturers_and_students_even_when_students_see_their_own_risk(
    url_name, lecturer, campus, settings
):
    settings.PREDICTIONS_STUDENTS_SEE_OWN_RISK = True
    assert signed_in(lecturer).get(reverse(url_name)).status_code == 403
    assert signed_in(campus["ana"].user).get(reverse(url_name)).status_code == 403


def test_advisor_dashboard_lists_only_their_advisees(advisor, campus):
    response = signed_in(advisor).get(DASHBOARD)
    assert response.status_code == 200
    assert row_order(response) == ["S1000001", "S1000002", "S1000003"]
    assert "Olga" not in text(response)


@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.ADMIN])
def test_registry_staff_see_every_student(role, campus):
    response = signed_in(UserFactory(roles=[role])).get(DASHBOARD)
    assert row_order(response) == ["S1000009", "S1000001", "S1000002", "S1000003"]


def test_student_page_is_for_the_students_advisor_and_registry_staff(
    advisor, other_advisor, registrar, lecturer, campus, client
):
    ana = campus["ana"]
    assert signed_in(advisor).get(student_url(ana)).status_code == 200
    assert signed_in(registrar).get(student_url(ana)).status_code == 200
    assert signed_in(UserFactory(roles=[Role.ADMIN])).get(student_url(ana)).status_code == 200
    assert signed_in(other_advisor).get(student_url(ana)).status_code == 404
    assert signed_in(lecturer).get(student_url(ana)).status_code == 403
    assert signed_in(ana.user).get(student_url(ana)).status_code == 403
    response = client.get(student_url(ana))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_another_advisors_advisee_and_a_missing_student_look_the_same(advisor, campus):
    client = signed_in(advisor)
    olga = client.get(student_url(campus["olga"]))
    missing = client.get(reverse("predictions:student-risk", args=[999999]))
    assert olga.status_code == missing.status_code == 404

    def without_reference(response) -> str:
        return re.sub(r"Reference: \w+", "", text(response))

    assert without_reference(olga) == without_reference(missing)
    assert "Olga" not in text(olga) and "S1000009" not in text(olga)


def test_an_advisor_who_also_lectures_sees_only_advisees(term, campus, runs):
    both = UserFactory(roles=[Role.ADVISOR, Role.LECTURER])
    campus["section"].lecturers.add(both)  # teaches Ana, advises nobody
    client = signed_in(both)
    assert row_order(client.get(DASHBOARD)) == []
    assert client.get(student_url(campus["ana"])).status_code == 404


def test_navigation_links_the_pages_for_advisors_and_registry_staff_only(advisor, registrar, lecturer, campus):
    for user in (advisor, registrar):
        page = signed_in(user).get(reverse("home")).content.decode()
        assert f'href="{DASHBOARD}"' in page and f'href="{REPORT}"' in page
    for user in (lecturer, campus["ana"].user):
        page = signed_in(user).get(reverse("home")).content.decode()
        assert f'href="{DASHBOARD}"' not in page and f'href="{REPORT}"' not in page


# --- The dashboard --------------------------------------------------------------------------------


def test_dashboard_rows_show_probability_band_factors_change_and_intervention(advisor, campus):
    response = signed_in(advisor).get(DASHBOARD)
    page, words = response.content.decode(), text(response)
    assert "Ana Example S1000001 BCS 81 % High ana late +20 yes" in words
    assert "Bea Example S1000002 BCS 45 % Medium bea grades new none yet" in words
    assert "Carl Example S1000003 BMA 12 % Low nothing stands out -10 none yet" in words
    assert f'href="{student_url(campus["ana"])}"' in page
    assert "scored on 2 Nov 2026" in words and "risk-2026-11-01" in words


def test_dashboard_shows_the_latest_succeeded_run_only(advisor, campus, term, model):
    ScoringRunFactory(term=term, model_version=model, as_of=LATER + datetime.timedelta(hours=5), status="failed")
    words = text(signed_in(advisor).get(DASHBOARD))
    assert "81 %" in words and "scored on 2 Nov 2026" in words


def test_dashboard_without_a_run_says_so(advisor, term):
    response = signed_in(advisor).get(DASHBOARD)
    assert response.status_code == 200
    assert "No scores yet: the nightly scoring has not run for this term" in text(response)


def test_dashboard_term_choice_shows_an_earlier_terms_run(advisor, campus, past_term, model):
    ScoringRunFactory(term=past_term, model_version=model, as_of=datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC))
    RiskScoreFactory(run=ScoringRun.objects.get(term=past_term), student=campus["carl"], probability=0.66, band="high")
    client = signed_in(advisor)
    page = client.get(DASHBOARD).content.decode()
    assert f'<option value="{past_term.pk}">Spring 2026</option>' in page
    response = client.get(DASHBOARD, {"term": past_term.pk})
    assert row_order(response) == ["S1000003"] and "66 %" in text(response)
    # The link to the student keeps the term.
    assert f'href="{student_url(campus["carl"], term=past_term.pk)}"' in response.content.decode()
    # A term without runs, or none at all, is the current term.
    assert row_order(client.get(DASHBOARD, {"term": 999999})) == ["S1000001", "S1000002", "S1000003"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["S1000001", "S1000002", "S1000003"]),
        ({"department": "CS"}, ["S1000001", "S1000002"]),
        ({"department": "MATH"}, ["S1000003"]),
        ({"program": "BMA"}, ["S1000003"]),
        ({"band": "medium"}, ["S1000002"]),
        ({"band": "high", "department": "CS"}, ["S1000001"]),
        ({"section": "SECTION"}, ["S1000001"]),  # Carl dropped the section
        ({"sort": "student_number"}, ["S1000001", "S1000002", "S1000003"]),
        ({"sort": "change"}, ["S1000001", "S1000003", "S1000002"]),  # +20, -10, then new ones
        ({"sort": "probability"}, ["S1000001", "S1000002", "S1000003"]),
    ],
)
def test_filters_and_sorts_change_the_rows(advisor, campus, query, expected):
    query = {k: campus["section"].pk if v == "SECTION" else v for k, v in query.items()}
    assert row_order(signed_in(advisor).get(DASHBOARD, query)) == expected


def test_sort_by_student_number_is_not_by_probability(registrar, campus):
    assert row_order(signed_in(registrar).get(DASHBOARD, {"sort": "student_number"})) == [
        "S1000001",
        "S1000002",
        "S1000003",
        "S1000009",
    ]


def test_a_filter_naming_nothing_is_reported_and_left_out(advisor, campus):
    response = signed_in(advisor).get(DASHBOARD, {"department": "NOPE", "band": "purple"})
    assert response.status_code == 200
    assert "Some filters name nothing and were left out." in text(response)
    assert row_order(response) == ["S1000001", "S1000002", "S1000003"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("", ["S1000001", "S1000002", "S1000003"]),
        ("   ", ["S1000001", "S1000002", "S1000003"]),
        ("S1000002", ["S1000002"]),
        ("s100000", ["S1000001", "S1000002", "S1000003"]),  # a number's start, in any case
        ("1000002", []),  # the middle of a number is not its start
        ("ana", ["S1000001"]),
        ("EXAMPLE", ["S1000001", "S1000002", "S1000003"]),
        ("Bea Ex", ["S1000002"]),  # every word starts the first or the last name
        ("Bea Carl", []),
        ("ample", []),
        ("Olga", []),  # another advisor's advisee is not found by name
        ("S1000009", []),  # nor by number
    ],
)
def test_search_by_name_or_student_number(advisor, campus, search, expected):
    assert row_order(signed_in(advisor).get(DASHBOARD, {"q": search})) == expected


def test_search_combines_with_filters_and_sort_and_says_when_nothing_matches(advisor, campus):
    client = signed_in(advisor)
    assert row_order(client.get(DASHBOARD, {"q": "example", "department": "MATH"})) == ["S1000003"]
    response = client.get(DASHBOARD, {"q": "zed", "band": "high"})
    assert row_order(response) == [] and "No student matches “zed” with these filters." in text(response)
    # The search stays in the box and in the sort and CSV links.
    page = client.get(DASHBOARD, {"q": "ana"}).content.decode()
    assert 'name="q" value="ana"' in page and "?q=ana&amp;sort=probability" in page
    assert f'href="{CSV_URL}?q=ana"' in page


def test_registry_staff_find_any_student_by_search(registrar, campus):
    assert row_order(signed_in(registrar).get(DASHBOARD, {"q": "olga"})) == ["S1000009"]


@pytest.mark.parametrize(
    ("search", "message"),
    [("a" * 101, "at most 100 characters"), ("an\ta", "control character"), ("ana\x00", "Null characters")],
)
def test_a_bad_search_is_reported_and_left_out(advisor, campus, search, message):
    response = signed_in(advisor).get(DASHBOARD, {"q": search})
    assert response.status_code == 200
    words = text(response)
    assert "The search was left out:" in words and message in words
    assert "Some filters name nothing" not in words
    assert row_order(response) == ["S1000001", "S1000002", "S1000003"]


def test_csv_holds_the_searched_rows(advisor, campus):
    rows = csv_rows(signed_in(advisor).get(CSV_URL, {"q": "bea"}))
    assert [row[0] for row in rows[1:]] == ["S1000002"]


def test_dashboard_rows_put_the_factors_in_an_expandable_summary(advisor, campus):
    campus["scores"]["ana"].factors = factor_list(["first; reason", "second reason", "third reason"])
    campus["scores"]["ana"].save(update_fields=["factors"])
    page = signed_in(advisor).get(DASHBOARD, {"q": "ana"}).content.decode()
    details = re.search(r'<details class="factor-details">(.*?)</details>', page, re.S).group(1)
    summary = re.search(r"<summary>(.*?)</summary>", details, re.S).group(1)
    assert "first; reason" in summary and "(+2 more)" in summary and "second reason" not in summary
    assert re.findall(r"<li>(.*?)</li>", details) == ["second reason", "third reason"]


def test_dashboard_pages_by_fifty(registrar, term, runs):
    run = runs[1]
    program = ProgramFactory()
    RiskScore.objects.bulk_create(
        [
            RiskScore(
                run=run,
                student=StudentFactory(program=program, student_number=f"P{i:07d}"),
                term=term,
                model_version=run.model_version,
                probability=0.5,
                band="medium",
                scored_at=LATER,
            )
            for i in range(51)
        ]
    )
    client = signed_in(registrar)
    first = client.get(DASHBOARD, {"sort": "student_number"})
    assert first.content.decode().count('scope="row"') == 50 and "Page 1 of 2" in text(first)
    second = client.get(DASHBOARD, {"sort": "student_number", "page": 2})
    assert second.content.decode().count('scope="row"') == 1 and "P0000050" in text(second)
    assert "?sort=student_number&amp;page=1" in second.content.decode()


# --- The CSV ----------------------------------------------------------------------------------------


def test_csv_holds_the_filtered_rows(advisor, campus):
    response = signed_in(advisor).get(CSV_URL, {"department": "CS", "sort": "student_number"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0] == [
        "student_number",
        "name",
        "program",
        "department",
        "probability_percent",
        "band",
        "change_points",
        "intervention",
        "factor_1",
        "factor_2",
        "factor_3",
        "term",
        "scored_at",
        "model_version",
    ]
    assert [row[0] for row in rows[1:]] == ["S1000001", "S1000002"]
    assert rows[1][1:11] == ["Ana Example", "BCS", "CS", "81.0", "high", "20", "yes", "ana late", "", ""]
    assert rows[2][4:9] == ["45.0", "medium", "new", "no", "bea grades"]
    assert rows[1][11:] == ["Autumn 2026", rows[1][12], "risk-2026-11-01"]


def test_csv_gives_each_factor_its_own_column_even_with_semicolons_in_it(registrar, term, runs, settings):
    settings.PREDICTIONS_TOP_FACTORS = 2
    texts = [f"reason {n}: 54%; campus median 88%" for n in range(1, 5)]
    RiskScoreFactory(
        run=runs[1], student=StudentFactory(student_number="S2000001"), probability=0.7345, factors=factor_list(texts)
    )
    RiskScoreFactory(run=runs[1], student=StudentFactory(student_number="S2000002"), probability=0.2, factors=[])
    rows = csv_rows(signed_in(registrar).get(CSV_URL, {"sort": "student_number"}))
    header = rows[0]
    # An older run kept four factors where the scoring now keeps two: four columns, so none is lost.
    assert header[8:12] == ["factor_1", "factor_2", "factor_3", "factor_4"] and header[12] == "term"
    first, second = rows[1], rows[2]
    assert first[4] == "73.5" and first[8:12] == texts
    assert second[4] == "20.0" and second[8:12] == ["", "", "", ""] and second[12] == "Autumn 2026"


def test_csv_header_keeps_the_scorings_factor_columns_when_no_row_has_factors(advisor, term, runs, settings):
    settings.PREDICTIONS_TOP_FACTORS = 3
    rows = csv_rows(signed_in(advisor).get(CSV_URL))
    assert [cell for cell in rows[0] if cell.startswith("factor_")] == ["factor_1", "factor_2", "factor_3"]


def test_csv_of_another_advisor_never_holds_my_advisees(other_advisor, campus):
    rows = csv_rows(signed_in(other_advisor).get(CSV_URL))
    assert [row[0] for row in rows[1:]] == ["S1000009"]


def test_csv_neutralises_formulas(registrar, term, runs):
    evil = StudentFactory(
        user__first_name='=HYPERLINK("http://evil.example")', user__last_name="x", student_number="+S1000666"
    )
    RiskScoreFactory(run=runs[1], student=evil, probability=0.7, band="high", factors=factor("@SUM(A1:A9)"))
    rows = csv_rows(signed_in(registrar).get(CSV_URL))
    row = next(row for row in rows if "S1000666" in row[0])
    assert row[0] == "'+S1000666" and row[1].startswith("'=HYPERLINK") and row[8] == "'@SUM(A1:A9)"
    assert row[rows[0].index("probability_percent")] == "70.0"
    assert row[6] == "new"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row if cell != "-10")


def test_csv_without_a_run_is_just_the_header(advisor, term):
    rows = csv_rows(signed_in(advisor).get(CSV_URL))
    assert len(rows) == 1 and rows[0][0] == "student_number"


# --- One student ------------------------------------------------------------------------------------


def test_student_page_shows_history_factors_interventions_and_feedback(advisor, campus, other_advisor):
    ana = campus["ana"]
    FlagFeedbackFactory(risk_score=campus["scores"]["ana"], advisor=advisor, verdict="incorrect", note="Was ill")
    response = signed_in(advisor).get(student_url(ana))
    words = text(response)
    assert "Latest score 81 % High scored on 2 Nov 2026" in words
    assert "What pushes this score up ana late" in words
    # Scores of this term, newest first, each with its change.
    assert re.search(r"2 Nov 2026, \d\d:\d\d 81 % High \+20 1 Nov 2026, \d\d:\d\d 61 % High first score", words)
    assert "Meeting" in words and "Met on Monday" in words and "Adele Advisor" in words
    assert "Incorrectly flagged" in words and "Was ill" in words
    assert f'name="risk_score" value="{campus["scores"]["ana"].pk}"' in response.content.decode()


def test_student_page_without_a_score_still_records_interventions(advisor, campus):
    bea = campus["bea"]
    RiskScore.objects.filter(student=bea).delete()
    response = signed_in(advisor).get(student_url(bea))
    assert "No score for this student in this term yet." in text(response)
    assert "Record intervention" in text(response) and "Send feedback" not in text(response)


def test_student_page_logs_the_read_without_names(advisor, campus, log_output):
    ana = campus["ana"]
    signed_in(advisor).get(student_url(ana))
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    viewed = [line for line in lines if line.get("event") == "risk_score_viewed"]
    assert len(viewed) == 1
    assert viewed[0]["viewer"] == advisor.pk and viewed[0]["student"] == ana.pk
    flat = json.dumps(viewed[0])
    assert "Ana" not in flat and ana.student_number not in flat and ana.user.email not in flat


# --- Recording an intervention -----------------------------------------------------------------------


def intervention_url(student) -> str:
    return reverse("predictions:intervention-create", args=[student.pk])


def feedback_url(student) -> str:
    return reverse("predictions:feedback-create", args=[student.pk])


def test_recording_an_intervention_redirects_and_lists_it(advisor, campus, term):
    bea, client = campus["bea"], signed_in(advisor)
    response = client.post(intervention_url(bea), {"kind": "referral", "note": "  Sent to the writing centre  "})
    assert response.status_code == 302 and response["Location"] == student_url(bea) + "#interventions"
    intervention = Intervention.objects.get(student=bea)
    assert (intervention.kind, intervention.note, intervention.advisor, intervention.term) == (
        "referral",
        "Sent to the writing centre",
        advisor,
        term,
    )
    assert intervention.risk_score == campus["scores"]["bea"]  # the latest score
    page = text(client.get(response["Location"]))
    assert "Intervention recorded: referral." in page and "Sent to the writing centre" in page
    # The dashboard now says so.
    assert "Bea Example S1000002 BCS 45 % Medium bea grades new yes" in text(client.get(DASHBOARD))


def test_registry_staff_may_record_an_intervention(registrar, campus):
    response = signed_in(registrar).post(intervention_url(campus["olga"]), {"kind": "contacted", "note": ""})
    assert response.status_code == 302
    assert Intervention.objects.filter(student=campus["olga"], advisor=registrar, note="").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "hypnosis", "note": "x"}, "Select a valid choice. hypnosis is not one of the available choices."),
        ({"note": "forgot the kind"}, "This field is required."),
        ({"kind": "meeting", "note": "x" * 2001}, "Ensure this value has at most 2000 characters"),
    ],
)
def test_bad_intervention_input_writes_nothing_and_says_why(advisor, campus, body, message):
    before = Intervention.objects.count()
    response = signed_in(advisor).post(intervention_url(campus["bea"]), body)
    assert response.status_code == 400
    words = text(response)
    assert "Nothing was saved. Correct the errors below." in words and message in words
    assert Intervention.objects.count() == before


def test_intervention_for_another_advisors_advisee_is_not_found_and_writes_nothing(advisor, lecturer, campus):
    before = Intervention.objects.count()
    assert signed_in(advisor).post(intervention_url(campus["olga"]), {"kind": "meeting"}).status_code == 404
    assert signed_in(lecturer).post(intervention_url(campus["ana"]), {"kind": "meeting"}).status_code == 403
    assert signed_in(advisor).get(intervention_url(campus["ana"])).status_code == 405
    assert Intervention.objects.count() == before


def test_intervention_in_an_earlier_term_keeps_that_term(advisor, campus, past_term, model):
    april = datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
    run = ScoringRunFactory(term=past_term, model_version=model, as_of=april)
    score = RiskScoreFactory(run=run, student=campus["carl"], probability=0.66, band="high")
    url = intervention_url(campus["carl"]) + f"?term={past_term.pk}"
    response = signed_in(advisor).post(url, {"kind": "contacted", "note": "Looking back"})
    assert response["Location"] == student_url(campus["carl"], term=past_term.pk) + "#interventions"
    intervention = Intervention.objects.get(note="Looking back")
    assert intervention.term == past_term and intervention.risk_score == score


def test_report_and_student_page_follow_the_chosen_term(advisor, campus, past_term, model):
    april = datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
    run = ScoringRunFactory(term=past_term, model_version=model, as_of=april)
    RiskScoreFactory(run=run, student=campus["carl"], probability=0.66, band="high")
    client = signed_in(advisor)
    words = text(client.get(REPORT, {"term": past_term.pk}))
    assert "latest scoring of Spring 2026, on 1 Apr 2026" in words
    assert "With an intervention 0 0 0" in words and "Without an intervention 1 0 0 not known yet" in words
    # A refused post re-renders the page of that term; its term picker still leads to the page itself.
    response = client.post(intervention_url(campus["carl"]) + f"?term={past_term.pk}", {"kind": "nope"})
    assert response.status_code == 400 and "Latest score 66 % High" in text(response)
    assert f'action="{student_url(campus["carl"])}"' in response.content.decode()


# --- Feedback on the flag -----------------------------------------------------------------------------


def test_feedback_on_the_latest_flag_is_recorded(advisor, campus):
    ana, score, client = campus["ana"], campus["scores"]["ana"], signed_in(advisor)
    response = client.post(feedback_url(ana), {"risk_score": score.pk, "verdict": "not_useful", "note": "Knew it"})
    assert response.status_code == 302 and response["Location"] == student_url(ana) + "#feedback"
    feedback = FlagFeedback.objects.get()
    assert (feedback.risk_score, feedback.verdict, feedback.note, feedback.advisor) == (
        score,
        "not_useful",
        "Knew it",
        advisor,
    )
    page = text(client.get(response["Location"]))
    assert "your feedback on the flag was recorded" in page and "Not useful" in page and "Knew it" in page


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"verdict": "meh"}, "Select a valid choice."),
        ({}, "This field is required."),
        ({"verdict": "useful", "risk_score": "OLGA"}, "That score is not one of this student's."),
        ({"verdict": "useful", "risk_score": "999999"}, "That score is not one of this student's."),
        ({"verdict": "useful", "risk_score": "abc"}, "The score this form was about is not valid."),
    ],
)
def test_bad_feedback_writes_nothing_and_says_why(advisor, campus, body, message):
    body = {"risk_score": campus["scores"]["ana"].pk, **body}
    if body["risk_score"] == "OLGA":
        body["risk_score"] = campus["scores"]["olga"].pk  # a score of another advisor's advisee
    response = signed_in(advisor).post(feedback_url(campus["ana"]), body)
    assert response.status_code == 400
    assert message in text(response)
    assert not FlagFeedback.objects.exists()


def test_feedback_on_another_advisors_advisee_is_not_found_and_writes_nothing(advisor, lecturer, campus):
    olga_score = campus["scores"]["olga"]
    body = {"risk_score": olga_score.pk, "verdict": "useful"}
    assert signed_in(advisor).post(feedback_url(campus["olga"]), body).status_code == 404
    assert signed_in(lecturer).post(feedback_url(campus["olga"]), body).status_code == 403
    assert not FlagFeedback.objects.exists()


# --- The intervention report ----------------------------------------------------------------------


@pytest.fixture
def report_case(term, runs, advisor, other_advisor):
    """Flagged (medium/high) in the latest run, by intervention and outcome:
    with:    A failed, B passed, C not known yet            -> 3 students, 2 known, 1 at risk (50 %)
    without: D failed (Otto's), E withdrew, F passed        -> 3 students, 3 known, 2 at risk (67 %)
    Not counted: G (low band, with an intervention, failed), H (flagged only in the earlier run)."""
    earlier, later = runs
    cases = {
        "A": ("high", True, "failed", advisor),
        "B": ("medium", True, "passed", advisor),
        "C": ("high", True, None, advisor),
        "D": ("high", False, "failed", other_advisor),
        "E": ("medium", False, "withdrew", advisor),
        "F": ("high", False, "passed", advisor),
        "G": ("low", True, "failed", advisor),
    }
    for name, (band, intervened, outcome, who) in cases.items():
        student = StudentFactory(student_number=f"R-{name}", advisor=who)
        RiskScoreFactory(run=later, student=student, band=band, probability={"low": 0.1}.get(band, 0.7))
        if intervened:
            InterventionFactory(student=student, term=term, advisor=who)
        if outcome:
            TermOutcomeFactory(student=student, term=term, outcome=outcome)
    h = StudentFactory(student_number="R-H", advisor=advisor)
    RiskScoreFactory(run=earlier, student=h, band="high")
    RiskScoreFactory(run=later, student=h, band="low", probability=0.1)
    TermOutcomeFactory(student=h, term=term, outcome=TermOutcome.Outcome.FAILED)
    InterventionFactory(student=h, term=term, advisor=advisor)


def test_report_numbers_on_a_hand_built_case(registrar, report_case):
    response = signed_in(registrar).get(REPORT)
    words = text(response)
    assert "With an intervention 3 2 1 50 %" in words
    assert "Without an intervention 3 3 2 67 %" in words
    assert (
        "An observation, not a causal claim: students who got an intervention may differ from those who did not."
        in words
    )


def test_report_for_an_advisor_covers_their_advisees_only(advisor, report_case):
    words = text(signed_in(advisor).get(REPORT))
    assert "With an intervention 3 2 1 50 %" in words
    assert "Without an intervention 2 2 1 50 %" in words  # D is Otto's advisee


def test_report_with_no_outcomes_known_says_not_known_yet(advisor, campus):
    words = text(signed_in(advisor).get(REPORT))
    assert "With an intervention 1 0 0 not known yet" in words  # Ana
    assert "Without an intervention 1 0 0 not known yet" in words  # Bea (Carl is low)


def test_report_without_a_run_says_so(advisor, term):
    words = text(signed_in(advisor).get(REPORT))
    assert "No scores yet: the nightly scoring has not run for this term" in words
    assert "An observation, not a causal claim" in words


# --- Students and their own risk ----------------------------------------------------------------------


def test_students_do_not_see_their_risk_by_default(campus, settings):
    settings.PREDICTIONS_STUDENTS_SEE_OWN_RISK = False
    words = text(signed_in(campus["ana"].user).get(reverse("portal:student-dashboard")))
    assert "Your risk estimate" not in words and "81 %" not in words and "ana late" not in words


def test_students_see_their_own_risk_when_the_institution_allows_it(campus, settings):
    settings.PREDICTIONS_STUDENTS_SEE_OWN_RISK = True
    response = signed_in(campus["ana"].user).get(reverse("portal:student-dashboard"))
    words = text(response)
    assert "Your risk estimate" in words
    assert "Estimated chance of failing or withdrawing this term: 81 % High" in words and "ana late" in words
    assert "Bea" not in words and "Olga" not in words
    # Still never the staff pages.
    assert signed_in(campus["ana"].user).get(student_url(campus["ana"])).status_code == 403


def test_a_student_without_a_score_sees_no_estimate_yet(campus, settings):
    settings.PREDICTIONS_STUDENTS_SEE_OWN_RISK = True
    RiskScore.objects.filter(student=campus["bea"]).delete()
    words = text(signed_in(campus["bea"].user).get(reverse("portal:student-dashboard")))
    assert "No estimate yet this term." in words


# --- Query counts: the same for 3 rows as for 30 ---------------------------------------------------


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def fill_run(term, model, advisor, size: int, *, day: int) -> None:
    """Two runs of the term on `day` (each later than the runs before), `size` new advisees scored in
    both (every other one with an intervention and an outcome), all enrolled in one section."""
    section = SectionFactory(term=term)
    night = EARLIER + datetime.timedelta(days=day)
    earlier = ScoringRunFactory(term=term, model_version=model, as_of=night)
    later = ScoringRunFactory(term=term, model_version=model, as_of=night + datetime.timedelta(hours=1))
    for index in range(size):
        student = StudentFactory(advisor=advisor)
        EnrollmentFactory(student=student, section=section)
        RiskScoreFactory(run=earlier, student=student, probability=0.3, band="medium")
        RiskScoreFactory(run=later, student=student, probability=0.6, band="high", factors=factor(f"reason {index}"))
        if index % 2:
            InterventionFactory(student=student, term=term, advisor=advisor)
            TermOutcomeFactory(student=student, term=term, outcome="failed")


@pytest.mark.parametrize(
    ("url", "lists_rows"),
    [
        (DASHBOARD, True),
        (f"{DASHBOARD}?sort=change&band=high", True),
        (f"{DASHBOARD}?q=S", True),
        (f"{DASHBOARD}?q=s+x", False),
        (CSV_URL, False),
        (f"{CSV_URL}?q=S", False),
        (REPORT, False),
    ],
)
def test_list_pages_run_the_same_queries_for_3_and_30_rows(url, lists_rows, term, model):
    counts = []
    for day, size in enumerate((3, 30)):
        advisor = UserFactory(roles=[Role.ADVISOR])
        fill_run(term, model, advisor, size, day=day)
        client = signed_in(advisor)
        if lists_rows:
            assert client.get(url).content.decode().count('scope="row"') == size
        counts.append(count_queries(client, url))
    assert counts[0] == counts[1], counts


def test_student_page_queries_do_not_grow_with_its_history(term, model, advisor):
    counts = []
    for size in (1, 10):
        student = StudentFactory(advisor=advisor)
        for day in range(size):
            run = ScoringRunFactory(term=term, model_version=model, as_of=EARLIER + datetime.timedelta(days=day))
            score = RiskScoreFactory(run=run, student=student)
            InterventionFactory(student=student, term=term, advisor=advisor)
            FlagFeedbackFactory(risk_score=score, advisor=advisor)
        counts.append(count_queries(signed_in(advisor), student_url(student)))
    assert counts[0] == counts[1], counts


# --- Closing an intervention -------------------------------------------------------------------------


def close_url(intervention) -> str:
    return reverse("predictions:intervention-close", args=[intervention.pk])


def test_closing_an_intervention_redirects_and_shows_it_closed_with_its_outcome(advisor, campus):
    ana, client = campus["ana"], signed_in(advisor)
    intervention = Intervention.objects.get(student=ana)
    before = client.get(student_url(ana)).content.decode()
    assert f'action="{close_url(intervention)}"' in before and f'id="close-{intervention.pk}-outcome"' in before
    response = client.post(close_url(intervention), {"outcome": "Attends again"})
    assert response.status_code == 302 and response["Location"] == student_url(ana) + "#interventions"
    intervention.refresh_from_db()
    assert intervention.closed_at is not None and intervention.outcome == "Attends again"
    page = client.get(response["Location"])
    words = text(page)
    assert "Intervention closed." in words and "Outcome: Attends again" in words
    assert f'action="{close_url(intervention)}"' not in page.content.decode()  # nothing left to close


def test_closing_twice_says_so_and_changes_nothing(advisor, campus):
    intervention = Intervention.objects.get(student=campus["ana"])
    client = signed_in(advisor)
    assert client.post(close_url(intervention), {"outcome": "first"}).status_code == 302
    response = client.post(close_url(intervention), {"outcome": "second"})
    assert response.status_code == 409
    assert "Nothing was saved." in text(response) and "already closed" in text(response)
    intervention.refresh_from_db()
    assert intervention.outcome == "first"


def test_a_too_long_outcome_writes_nothing_and_says_why(advisor, campus):
    intervention = Intervention.objects.get(student=campus["ana"])
    response = signed_in(advisor).post(close_url(intervention), {"outcome": "x" * 2001})
    assert response.status_code == 400
    assert "Ensure this value has at most 2000 characters" in text(response)
    intervention.refresh_from_db()
    assert intervention.closed_at is None and intervention.outcome == ""


def test_closing_another_advisors_intervention_is_not_found_and_writes_nothing(campus, other_advisor, lecturer):
    intervention = Intervention.objects.get(student=campus["ana"])
    assert signed_in(other_advisor).post(close_url(intervention), {"outcome": "x"}).status_code == 404
    assert signed_in(lecturer).post(close_url(intervention), {"outcome": "x"}).status_code == 403
    assert signed_in(other_advisor).get(close_url(intervention)).status_code == 405
    intervention.refresh_from_db()
    assert intervention.closed_at is None


def test_closing_needs_the_csrf_token(advisor, campus):
    intervention = Intervention.objects.get(student=campus["ana"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(advisor)
    assert client.post(close_url(intervention), {"outcome": "x"}).status_code == 403
    intervention.refresh_from_db()
    assert intervention.closed_at is None
