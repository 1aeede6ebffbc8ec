from enum import StrEnum


class CampusErrorCode(StrEnum):
    SEMESTER_OUT_OF_RANGE = "semester_out_of_range"
    STUDENT_NUMBER_TAKEN = "student_number_taken"
    EMAIL_TAKEN = "email_taken"
    STUDENT_NOT_ACTIVE = "student_not_active"
    ALREADY_ENROLLED = "already_enrolled"
    SECTION_FULL = "section_full"
    ENROLLMENT_NOT_ACTIVE = "enrollment_not_active"
    NOT_ENROLLED = "not_enrolled"
    SCORE_OUT_OF_RANGE = "score_out_of_range"
    GRADE_CHANGED_MEANWHILE = "grade_changed_meanwhile"
    GRADE_REMOVAL_REFUSED = "grade_removal_refused"
    GRADE_COMPUTED = "grade_computed"
    WEIGHTS_OVER_100 = "weights_over_100"
    WEIGHTS_INCOMPLETE = "weights_incomplete"
    ADVISOR_NOT_ADVISOR = "advisor_not_advisor"
    DATE_OUTSIDE_TERM = "date_outside_term"
    PRIOR_GRADE_OUT_OF_RANGE = "prior_grade_out_of_range"
    TERM_NOT_ENDED = "term_not_ended"
