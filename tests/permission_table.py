# ruff: noqa: E501  (a table reads best one row per line)
"""The literal permission table: every route, by every kind of caller, → the status they get.

Written by hand from the access rules in docs/API.md and docs/DOMAIN.md — never derived from the
permission code it checks. tests/test_permissions.py walks it, and fails when a route of the URL
resolver has no row here.

The world (tests/test_permissions.py: `world`): student S is enrolled in section X, taught by
lecturer L, and advised by advisor A; student O is enrolled in section Y, taught by lecturer L2, and
advised by A2. R is a registrar, AD an admin. A scoring run of the term scored S and O. `{…}` in a
path is an id from that world; a key starting with "?" is a query parameter ("=…" a literal value).

Writes: every method a route accepts has a row (tests/test_permissions.py proves it: any other method
answers 405), and a refused write (4xx, or the portal's "sign in first") must leave every table as it was.
Filters naming the other student's side of the world (their id, section, session, advisor, number)
answer 200 with an empty list, never a 404 that confirms they exist.
"""

ROLES = (
    "anon",
    "student",
    "other_student",
    "lecturer",
    "other_lecturer",
    "advisor",
    "other_advisor",
    "registrar",
    "admin",
)

# fmt: off
#       method    url name                     path args        body            anon stu  oth  lec  olec adv  oadv reg  adm
TABLE = [
    # --- API: basics, tokens, documentation -------------------------------------------------------
    ("GET",    "api-root",                  {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "api-me",                    {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    # A big import's progress (polled by its admin page): registry staff who may see import jobs.
    ("GET",    "import-job-progress",       {"job_id": "import_job"}, None,          401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("POST",   "api-token",                 {},                     "token_login",   201, 201, 201, 201, 201, 201, 201, 201, 201),
    ("GET",    "api-token-current",         {},                     None,            401, 400, 400, 400, 400, 400, 400, 400, 400),
    ("DELETE", "api-token-current",         {},                     None,            401, 400, 400, 400, 400, 400, 400, 400, 400),
    ("GET",    "api-schema",                {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "api-docs",                  {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "api-redoc",                 {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    # --- API: catalogue (everyone signed in reads; registry staff write) ----------------------------
    ("GET",    "department-list",           {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "department-list",           {},                     "department",    401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "department-detail",         {"pk": "department"},   None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("PUT",    "department-detail",         {"pk": "department"},   "department",    401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PATCH",  "department-detail",         {"pk": "department"},   "rename",        401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "department-detail",         {"pk": "spare_department"}, None,        401, 403, 403, 403, 403, 403, 403, 204, 204),
    ("GET",    "program-list",              {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "program-list",              {},                     "program",       401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "program-detail",            {"pk": "program"},      None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("PUT",    "program-detail",            {"pk": "program"},      "program",       401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PATCH",  "program-detail",            {"pk": "program"},      "rename",        401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "program-detail",            {"pk": "program"},      None,            401, 403, 403, 403, 403, 403, 403, 409, 409),
    ("GET",    "course-list",               {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "course-list",               {},                     "course",        401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "course-detail",             {"pk": "course"},       None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("PUT",    "course-detail",             {"pk": "course"},       "course",        401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PATCH",  "course-detail",             {"pk": "course"},       "retitle",       401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "course-detail",             {"pk": "course"},       None,            401, 403, 403, 403, 403, 403, 403, 409, 409),
    ("GET",    "term-list",                 {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "term-list",                 {},                     "term",          401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "term-detail",               {"pk": "term"},         None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("PUT",    "term-detail",               {"pk": "term"},         "term",          401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PATCH",  "term-detail",               {"pk": "term"},         "rename",        401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "term-detail",               {"pk": "term"},         None,            401, 403, 403, 403, 403, 403, 403, 409, 409),
    ("GET",    "section-list",              {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "section-list",              {},                     "section",       401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "section-detail",            {"pk": "section"},      None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("PUT",    "section-detail",            {"pk": "section"},      "section_put",   401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PATCH",  "section-detail",            {"pk": "section"},      "capacity",      401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "section-detail",            {"pk": "section"},      None,            401, 403, 403, 403, 403, 403, 403, 409, 409),
    ("GET",    "assessment-list",           {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "assessment-list",           {},                     "assessment",    401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "assessment-detail",         {"pk": "assessment"},   None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("PUT",    "assessment-detail",         {"pk": "assessment"},   "assessment_put", 401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("PATCH",  "assessment-detail",         {"pk": "assessment"},   "rename",        401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("DELETE", "assessment-detail",         {"pk": "spare_assessment"}, None,        401, 403, 403, 403, 403, 403, 403, 204, 204),
    # --- API: people's data (scoped; outside the scope is 404) --------------------------------------
    ("GET",    "student-list",              {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "student-list",              {},                     "new_student",   401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "student-detail",            {"pk": "student"},      None,            401, 200, 404, 200, 404, 200, 404, 200, 200),
    ("PATCH",  "student-detail",            {"pk": "student"},      "semester",      401, 403, 404, 403, 404, 403, 404, 200, 200),
    ("GET",    "enrollment-list",           {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "enrollment-list",           {},                     "enrol",         401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "enrollment-detail",         {"pk": "enrollment"},   None,            401, 200, 404, 200, 404, 200, 404, 200, 200),
    ("POST",   "enrollment-end",            {"pk": "enrollment"},   "end",           401, 403, 404, 403, 404, 403, 404, 200, 200),
    ("GET",    "grade-list",                {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    # Naming a student you may not see is "no such student" (400 on the field), never a 403 that confirms them.
    ("POST",   "grade-list",                {},                     "grade",         401, 403, 400, 201, 400, 403, 400, 201, 201),
    # O's grade on L's assessment: whoever cannot see O is told "no such student"; L2 and A2, who can, are
    # refused the assessment (403); registry staff are refused because O is not enrolled in L's section.
    ("POST",   "grade-list",                {},                     "grade_o_in_x",  401, 400, 403, 400, 403, 400, 403, 400, 400),
    ("GET",    "grade-detail",              {"pk": "grade"},        None,            401, 200, 404, 200, 404, 200, 404, 200, 200),
    ("PATCH",  "grade-detail",              {"pk": "grade"},        "score",         401, 403, 404, 200, 404, 403, 404, 200, 200),
    ("GET",    "termoutcome-list",          {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "termoutcome-list",          {},                     "outcome",       401, 403, 403, 403, 403, 403, 403, 201, 201),
    ("GET",    "termoutcome-detail",        {"pk": "outcome"},      None,            401, 200, 404, 200, 404, 200, 404, 200, 200),
    # Filters naming a student (or their section, session, advisor) the caller may not see: an empty list,
    # never a 404 that confirms them. tests/test_permissions.py checks the list is empty for that side.
    ("GET",    "student-list",              {"?search": "=S-OTHER-99"}, None,        401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "student-list",              {"?search": "=S-SUBJECT-1"}, None,       401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "student-list",              {"?advisor": "advisor_a2"}, None,        401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "student-list",              {"?advisor": "advisor_a"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "student-list",              {"?section": "section_y"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "student-list",              {"?section": "section"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "enrollment-list",           {"?student": "other"},  None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "enrollment-list",           {"?student": "student"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "enrollment-list",           {"?section": "section_y"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "enrollment-list",           {"?section": "section"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "grade-list",                {"?student": "other"},  None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "grade-list",                {"?student": "student"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "grade-list",                {"?section": "section_y"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "grade-list",                {"?section": "section"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "grade-list",                {"?search": "=S-OTHER-99"}, None,        401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "grade-list",                {"?search": "=S-SUBJECT-1"}, None,       401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "termoutcome-list",          {"?student": "other"},  None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "termoutcome-list",          {"?student": "student"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    # --- API: attendance ----------------------------------------------------------------------------
    ("GET",    "classsession-list",         {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "classsession-list",         {},                     "class_session", 401, 403, 403, 201, 403, 403, 403, 201, 201),
    # A lecturer scheduling in another lecturer's section.
    ("POST",   "classsession-list",         {},                     "class_session_y", 401, 403, 403, 403, 201, 403, 403, 201, 201),
    ("POST",   "classsession-series",       {},                     "series",        401, 403, 403, 201, 403, 403, 403, 201, 201),
    ("GET",    "classsession-detail",       {"pk": "session"},      None,            401, 200, 404, 200, 404, 200, 404, 200, 200),
    ("POST",   "classsession-open",         {"pk": "open_session"}, None,            401, 403, 404, 200, 404, 403, 404, 200, 200),
    ("POST",   "classsession-close",        {"pk": "session"},      None,            401, 403, 404, 200, 404, 403, 404, 200, 200),
    ("POST",   "classsession-cancel",       {"pk": "session"},      "reason",        401, 403, 404, 200, 404, 403, 404, 200, 200),
    ("GET",    "attendancerecord-list",     {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerecord-detail",   {"pk": "record"},       None,            401, 200, 404, 200, 404, 200, 404, 200, 200),
    ("PATCH",  "attendancerecord-detail",   {"pk": "record"},       "excuse_status", 401, 403, 404, 200, 404, 403, 404, 200, 200),
    ("POST",   "attendancerecord-void",     {"pk": "record"},       "reason",        401, 403, 404, 200, 404, 403, 404, 200, 200),
    ("GET",    "attendancerate-list",       {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-sections",   {},                     None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    # Filters naming the other side of the world: an empty list (rates and section summaries included).
    ("GET",    "attendancerecord-list",     {"?student": "other"},  None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerecord-list",     {"?student": "student"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerecord-list",     {"?session": "session_y"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerecord-list",     {"?session": "session"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerecord-list",     {"?search": "=S-OTHER-99"}, None,        401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerecord-list",     {"?search": "=S-SUBJECT-1"}, None,       401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-list",       {"?student": "other"},  None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-list",       {"?student": "student"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-list",       {"?section": "section_y"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-list",       {"?section": "section"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-sections",   {"?student": "other"},  None,            401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-sections",   {"?student": "student"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-sections",   {"?section": "section_y"}, None,         401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendancerate-sections",   {"?section": "section"}, None,           401, 200, 200, 200, 200, 200, 200, 200, 200),
    # A staff record for S in the open session; the other lecturer cannot even name S (400 on the field).
    ("POST",   "check-in",                  {},                     "manual_check_in", 401, 403, 403, 201, 400, 403, 403, 201, 201),
    # --- API: at-risk predictions ------------------------------------------------------------------
    # Advisors read their advisees' scores, registry staff everyone; students (by default) and lecturers 403.
    ("GET",    "riskscore-list",            {},                     None,            401, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "riskscore-detail",          {"pk": "risk_score"},   None,            401, 403, 403, 403, 403, 200, 404, 200, 200),
    ("GET",    "riskscore-list",            {"?student": "other"},  None,            401, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "riskscore-list",            {"?student": "student"}, None,           401, 403, 403, 403, 403, 200, 200, 200, 200),
    # No model is active in this world: those allowed to ask get 409 no_active_model, nothing is written.
    ("POST",   "riskscore-score-student",   {},                     "score_student", 401, 403, 403, 403, 403, 409, 404, 409, 409),
    ("POST",   "riskscore-score-student",   {},                     "score_other",   401, 403, 403, 403, 403, 404, 409, 409, 409),
    ("GET",    "modelversion-list",         {},                     None,            401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("GET",    "modelversion-detail",       {"pk": "model_version"}, None,           401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("GET",    "scoringrun-list",           {},                     None,            401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("GET",    "scoringrun-detail",         {"pk": "run"},          None,            401, 403, 403, 403, 403, 403, 403, 200, 200),
    ("POST",   "scoringrun-list",           {},                     "scoring_run",   401, 403, 403, 403, 403, 403, 403, 409, 409),
    # --- Portal: signing in and out, passwords ("form:" bodies are posted as a browser form) -------
    ("GET",    "health-live",               {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    # Readiness for load balancers; /metrics from the monitoring networks (loopback here) or with the token.
    ("GET",    "health-ready",              {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "metrics",                   {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "home",                      {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "login",                     {},                     None,            200, 302, 302, 302, 302, 302, 302, 302, 302),
    ("POST",   "login",                     {},                     "form:login",    302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("GET",    "logout",                    {},                     None,            405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("POST",   "logout",                    {},                     None,            302, 302, 302, 302, 302, 302, 302, 302, 302),
    # Campus sign-on: no provider is configured in the table's campus, so every provider is unknown (404);
    # tests/accounts/test_sso*.py sign in through a real and a crafted one.
    ("GET",    "sso_begin",                 {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("GET",    "sso_callback",              {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("POST",   "sso_callback",              {"slug": "=campus"},    None,            405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("POST",   "sso_acs",                   {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("GET",    "sso_acs",                   {"slug": "=campus"},    None,            405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("GET",    "sso_complete",              {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("GET",    "sso_metadata",              {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("GET",    "sso_sls",                   {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("POST",   "sso_sls",                   {"slug": "=campus"},    None,            405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("POST",   "sso_backchannel_logout",    {"slug": "=campus"},    None,            404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("GET",    "sso_backchannel_logout",    {"slug": "=campus"},    None,            405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("GET",    "password_change",           {},                     None,            302, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "password_change",           {},                     "form:password", 302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("GET",    "password_change_done",      {},                     None,            302, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "password_reset",            {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "password_reset",            {},                     "form:reset",    302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("GET",    "password_reset_done",       {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "password_reset_confirm",    {"uidb64": "=MQ", "token": "=bad-token"}, None, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    # The new password is posted to the same address; a bad link answers the "invalid link" page and sets nothing.
    ("POST",   "password_reset_confirm",    {"uidb64": "=MQ", "token": "=bad-token"}, "form:new_password", 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "password_reset_complete",   {},                     None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    # The sign-in code step: nobody in this world has two-factor on or a password step pending, so everyone is
    # sent on (anonymous back to sign in, the signed-in home). docs/ACCOUNTS.md.
    ("GET",    "login_code",                {},                     None,            302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("POST",   "login_code",                {},                     None,            302, 302, 302, 302, 302, 302, 302, 302, 302),
    # Two-factor set-up is for staff only; students never see it (404). POST two_factor starts a set-up (302 to
    # the QR page); with no set-up started, the QR page and "turn off" send staff back to two_factor (302).
    ("GET",    "two_factor",                {},                     None,            302, 404, 404, 200, 200, 200, 200, 200, 200),
    ("POST",   "two_factor",                {},                     None,            302, 404, 404, 302, 302, 302, 302, 302, 302),
    ("GET",    "two_factor_setup",          {},                     None,            302, 404, 404, 302, 302, 302, 302, 302, 302),
    ("POST",   "two_factor_setup",          {},                     None,            302, 404, 404, 302, 302, 302, 302, 302, 302),
    ("POST",   "two_factor_disable",        {},                     None,            302, 404, 404, 302, 302, 302, 302, 302, 302),
    # "Sign in again" (a page needs a recent sign-in): signed-in people get the form instead of being sent on.
    ("GET",    "login",                     {"?reauth": "=1"},      None,            200, 200, 200, 200, 200, 200, 200, 200, 200),
    # Everyone's own API tokens (their list; a new one after a recent sign-in, shown once: 201). S's token
    # ("student_token") is revoked by S alone (302 back to the list); to anyone else it does not exist (404).
    ("GET",    "api_tokens",                {},                     None,            302, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST",   "api_tokens",                {},                     "form:api_token", 302, 201, 201, 201, 201, 201, 201, 201, 201),
    ("POST",   "api_token_revoke",          {"token_id": "student_token"}, None,     302, 302, 404, 404, 404, 404, 404, 404, 404),
    # --- Portal pages (anonymous: 302 to sign in; wrong role: 403; someone else's object: 404) -----
    ("GET",    "portal:index",              {},                     None,            302, 302, 302, 302, 302, 302, 302, 302, 302),
    # "Today"'s one-click open for lecturers: their own section's session opens and shows its code (302 to the
    # display); another lecturer's session is not found; other roles, registry staff included, use the session pages.
    ("POST",   "portal:today-session-open", {"session_id": "open_session"}, None,    302, 403, 403, 302, 404, 403, 403, 403, 403),
    ("GET",    "portal:student-dashboard",  {},                     None,            302, 200, 200, 403, 403, 403, 403, 403, 403),
    ("GET",    "portal:student-profile",    {},                     None,            302, 200, 200, 403, 403, 403, 403, 403, 403),
    # "Download my data": a student's own, and only theirs (no parameter names anyone); staff 403.
    ("GET",    "portal:student-data-export", {},                    None,            302, 200, 200, 403, 403, 403, 403, 403, 403),
    ("GET",    "portal:lecturer-sections",  {},                     None,            302, 403, 403, 200, 200, 403, 403, 403, 403),
    ("GET",    "portal:section-detail",     {"section_id": "section"}, None,         302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("GET",    "portal:grade-entry",        {"section_id": "section", "assessment_id": "assessment"}, None,
                                                                                     302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "portal:grade-entry",        {"section_id": "section", "assessment_id": "assessment"}, "form:grades",
                                                                                     302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "portal:advisor-dashboard",  {},                     None,            302, 403, 403, 403, 403, 200, 200, 403, 403),
    ("GET",    "portal:advisee-detail",     {"student_id": "student"}, None,         302, 403, 403, 403, 403, 200, 404, 403, 403),
    # --- Portal: attendance (S is in section X; "open_session" is X's session running now) ---------
    ("GET",    "attendance:check-in",       {"token": "qr_token"},  None,            302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("GET",    "attendance:check-in-confirm", {},                   None,            302, 302, 302, 403, 403, 403, 403, 403, 403),
    ("POST",   "attendance:check-in-confirm", {},                   None,            302, 302, 302, 403, 403, 403, 403, 403, 403),
    ("GET",    "attendance:check-in-code",  {},                     None,            302, 200, 200, 403, 403, 403, 403, 403, 403),
    ("POST",   "attendance:check-in-code",  {},                     "form:code",     302, 302, 400, 403, 403, 403, 403, 403, 403),
    ("GET",    "attendance:check-in-done",  {"record_id": "record"}, None,           302, 200, 404, 403, 403, 403, 403, 403, 403),
    ("GET",    "attendance:my-attendance",  {},                     None,            302, 200, 200, 403, 403, 403, 403, 403, 403),
    ("POST",   "attendance:excuse-submit",  {"record_id": "absence"}, "form:reason", 302, 302, 404, 403, 403, 403, 403, 403, 403),
    # Reporting an absence in advance: O naming S's section X is a form error (400), nothing written.
    ("GET",    "attendance:advance-absences", {},                   None,            302, 200, 200, 403, 403, 403, 403, 403, 403),
    ("POST",   "attendance:advance-absences", {},                   "form:advance_absence", 302, 302, 400, 403, 403, 403, 403, 403, 403),
    ("POST",   "attendance:advance-absence-withdraw", {"absence_id": "advance_absence"}, None, 302, 302, 404, 403, 403, 403, 403, 403, 403),
    # The document: the student, the section's lecturers and registry staff; anyone else 404.
    ("GET",    "attendance:advance-absence-attachment", {"absence_id": "advance_absence"}, None, 302, 200, 404, 200, 404, 404, 404, 200, 200),
    ("GET",    "attendance:section-sessions", {"section_id": "section"}, None,       302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:session-create", {"section_id": "section"}, "form:session", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("POST",   "attendance:session-create", {"section_id": "section_y"}, "form:session", 302, 403, 403, 404, 302, 403, 403, 302, 302),
    ("POST",   "attendance:series-create",  {"section_id": "section"}, "form:series", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    # Cancelling a series: the first POST shows what would be cancelled (200) and changes nothing.
    ("POST",   "attendance:series-cancel",  {"section_id": "section"}, "form:series_cancel", 302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("GET",    "attendance:section-roster", {"section_id": "section"}, None,         302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("GET",    "attendance:section-roster-csv", {"section_id": "section"}, None,     302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("GET",    "attendance:attendance-grade", {"section_id": "section"}, None,       302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:attendance-grade", {"section_id": "section"}, "form:attendance_grade", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("POST",   "attendance:attendance-grade-disable", {"section_id": "section"}, None, 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:section-roster-xlsx", {"section_id": "section"}, None,    302, 403, 403, 200, 404, 403, 403, 200, 200),
    # Changing one session's column of the grid (a closed session: with a reason).
    ("POST",   "attendance:section-roster", {"section_id": "section"}, "form:grid",  302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:session-detail", {"session_id": "open_session"}, None,    302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:session-open",   {"session_id": "open_session"}, None,    302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:session-close",  {"session_id": "open_session"}, None,    302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:session-close",  {"session_id": "open_session"}, None,    302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:session-take",   {"session_id": "open_session"}, None,    302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:session-take",   {"session_id": "open_session"}, "form:marks", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:session-marks-json", {"session_id": "open_session"}, None, 302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:session-cancel", {"session_id": "open_session"}, "form:reason", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:session-display", {"session_id": "open_session"}, None,   302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("GET",    "attendance:session-display-json", {"session_id": "open_session"}, None, 302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:record-set",     {"session_id": "open_session"}, "form:record_set", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    # Naming O, who is not on the session's roster: the form says so (200), O is not named back, nothing is set.
    ("POST",   "attendance:record-set",     {"session_id": "open_session"}, "form:record_set_o", 302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:record-void",    {"record_id": "record"}, "form:reason",  302, 403, 403, 302, 404, 403, 403, 302, 302),
    # Groups of a section's students (lab groups) and the section's allowed networks: its lecturers and registry staff.
    ("GET",    "attendance:section-groups", {"section_id": "section"}, None,         302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:section-groups", {"section_id": "section"}, "form:group", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:group-detail",   {"group_id": "group"},  None,            302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:group-detail",   {"group_id": "group"},  "form:group",    302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("POST",   "attendance:group-members",  {"group_id": "group"},  "form:group_members", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("POST",   "attendance:group-delete",   {"group_id": "spare_group"}, None,       302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:section-networks", {"section_id": "section"}, None,       302, 403, 403, 200, 404, 403, 403, 200, 200),
    ("POST",   "attendance:section-networks", {"section_id": "section"}, "form:networks", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    ("GET",    "attendance:excuses",        {},                     None,            302, 403, 403, 200, 200, 403, 403, 200, 200),
    ("POST",   "attendance:excuse-decide",  {"excuse_id": "excuse"}, "form:decide",  302, 403, 403, 302, 404, 403, 403, 302, 302),
    # Private calendar feeds: students and lecturers make and revoke their own; the feed's secret URL is the
    # only credential (S's feed, fetched by anyone holding it), an unknown one 404 for all.
    ("GET",    "attendance:calendar",       {},                     None,            302, 200, 200, 200, 200, 403, 403, 403, 403),
    ("POST",   "attendance:calendar",       {},                     None,            302, 200, 200, 200, 200, 403, 403, 403, 403),
    ("POST",   "attendance:calendar-revoke", {},                    None,            302, 302, 302, 302, 302, 403, 403, 403, 403),
    ("GET",    "attendance:calendar-feed",  {"token": "calendar_token"}, None,       200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "attendance:calendar-feed",  {"token": "=not-a-feed"}, None,          404, 404, 404, 404, 404, 404, 404, 404, 404),
    ("POST",   "attendance:advance-absence-decide", {"absence_id": "advance_absence"}, "form:decide", 302, 403, 403, 302, 404, 403, 403, 302, 302),
    # --- Portal: at-risk (predictions) -----------------------------------------------------------
    # Advisors see their advisees, registry staff everyone; students and lecturers 403; another advisor's advisee 404.
    ("GET",    "predictions:at-risk",       {},                     None,            302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk",       {"?section": "section_y"}, None,         302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk",       {"?section": "section"}, None,           302, 403, 403, 403, 403, 200, 200, 200, 200),
    # A search matching both students' numbers, and one matching O's: each advisor still sees only their own.
    ("GET",    "predictions:at-risk",       {"?q": "=S-"},          None,            302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk",       {"?q": "=S-OTHER"},     None,            302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk-csv",   {},                     None,            302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk-csv",   {"?q": "=S-"},          None,            302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk-csv",   {"?section": "section_y"}, None,         302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:at-risk-csv",   {"?section": "section"}, None,           302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:report",        {},                     None,            302, 403, 403, 403, 403, 200, 200, 200, 200),
    ("GET",    "predictions:student-risk",  {"student_id": "student"}, None,         302, 403, 403, 403, 403, 200, 404, 200, 200),
    ("POST",   "predictions:intervention-create", {"student_id": "student"}, "form:intervention",
                                                                                     302, 403, 403, 403, 403, 302, 404, 302, 302),
    # An advisor recording an intervention for someone else's advisee.
    ("POST",   "predictions:intervention-create", {"student_id": "other"}, "form:intervention",
                                                                                     302, 403, 403, 403, 403, 404, 302, 302, 302),
    # Closing S's open intervention (recorded by A); another advisor's is a 404, like the student's page.
    ("POST",   "predictions:intervention-close", {"intervention_id": "intervention"}, "form:intervention_close",
                                                                                     302, 403, 403, 403, 403, 302, 404, 302, 302),
    ("POST",   "predictions:feedback-create", {"student_id": "student"}, "form:feedback",
                                                                                     302, 403, 403, 403, 403, 302, 404, 302, 302),
]
# fmt: on

# Routes deliberately outside this table, with the reason.
EXEMPT_ROUTE_PREFIXES = {
    "admin:": "the Django admin: staff only, tested per role in tests/students/test_admin.py",
}

# Bearer tokens of a service account holding the Registrar role (a sync tool): they get the registrar
# column, a read-only token 403 token_read_only on every write; except here, (method, route, scope) → status.
SERVICE_TOKEN_STATUS = {
    ("GET", "api-token-current", "read_write"): 200,  # a session has no current token (400); a token does
    ("GET", "api-token-current", "read_only"): 200,
    ("DELETE", "api-token-current", "read_write"): 204,  # revoking itself
    ("DELETE", "api-token-current", "read_only"): 204,  # even a read-only token may revoke itself
    ("POST", "api-token", "read_only"): 201,  # asking for a token takes a password, not a token
}
