import django_filters

from campusiq.core.filters import IdFilter
from predictions.models import RiskScore


class RiskScoreFilter(django_filters.FilterSet):
    run = IdFilter(field_name="run_id")
    term = IdFilter(field_name="term_id")
    student = IdFilter(field_name="student_id")
    program = django_filters.CharFilter(field_name="student__program__code")
    department = django_filters.CharFilter(field_name="student__program__department__code")
    band = django_filters.ChoiceFilter(choices=RiskScore.Band.choices)
    min_probability = django_filters.NumberFilter(field_name="probability", lookup_expr="gte")

    class Meta:
        model = RiskScore
        fields = ["run", "term", "student", "program", "department", "band", "min_probability"]
