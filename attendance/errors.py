from enum import StrEnum


class AttendanceErrorCode(StrEnum):
    # Bandit B105: not a secret: a name, code or example.
    TOKEN_INVALID = "token_invalid"  # nosec B105
    # Bandit B105: not a secret: a name, code or example.
    TOKEN_EXPIRED = "token_expired"  # nosec B105
    CODE_INVALID = "code_invalid"
    WRONG_SESSION = "token_wrong_session"
    SESSION_NOT_STARTED = "session_not_started"
    SESSION_ENDED = "session_ended"
    SESSION_NOT_OPEN = "session_not_open"
    SESSION_CLOSED = "session_closed"
    SESSION_CANCELLED = "session_cancelled"
    NOT_ENROLLED = "not_enrolled"
    NOT_IN_GROUP = "not_in_group"
    STUDENT_SUSPENDED = "student_suspended"
    STUDENT_NOT_ACTIVE = "student_not_active"
    SCAN_EXPIRED = "scan_expired"
    SCAN_OTHER_DEVICE = "scan_other_device"
    PROXY_REFUSED = "proxy_refused"
    CARD_UNKNOWN = "card_unknown"
    READER_UNKNOWN = "reader_unknown"
    NO_SESSION_IN_ROOM = "no_session_in_room"
    SESSION_TIME_INVALID = "session_time_invalid"
    REASON_REQUIRED = "reason_required"
    STATUS_INVALID = "status_invalid"
    STATUS_SET_INCOMPLETE = "status_set_incomplete"
    ATTENDANCE_GRADE_EXISTS = "attendance_grade_exists"
    DROP_LOWEST_INVALID = "drop_lowest_invalid"
    EXCUSE_NOT_ALLOWED = "excuse_not_allowed"
    EXCUSE_ALREADY_DECIDED = "excuse_already_decided"
    ABSENCE_DATES_INVALID = "absence_dates_invalid"
    ABSENCE_OVERLAPS = "absence_overlaps"
    ATTACHMENT_INVALID = "attachment_invalid"
    ABSENCE_ALREADY_DECIDED = "absence_already_decided"
    NOT_ALLOWED = "not_allowed"
    SESSION_DUPLICATE = "session_duplicate"
    GROUP_INVALID = "group_invalid"
    NETWORKS_INVALID = "networks_invalid"
    SERIES_INVALID = "series_invalid"
