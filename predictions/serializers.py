from rest_framework import serializers

from predictions.models import ModelVersion, RiskScore, ScoringRun


class RiskFactorSerializer(serializers.Serializer):
    feature = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    contribution = serializers.FloatField(help_text="Its share of the model's logit (coefficient x standardised).")
    text = serializers.CharField(help_text='Plain language, e.g. "attendance over the last 4 weeks: 54%; median 88%".')


class RiskScoreSerializer(serializers.ModelSerializer):
    student_number = serializers.CharField(source="student.student_number", read_only=True)
    program = serializers.CharField(source="student.program.code", read_only=True)
    department = serializers.CharField(source="student.program.department.code", read_only=True)
    model_version = serializers.CharField(source="model_version.name", read_only=True)
    factors = RiskFactorSerializer(many=True, read_only=True)

    class Meta:
        model = RiskScore
        fields = [
            "id", "run", "student", "student_number", "program", "department", "term", "model_version",
            "probability", "band", "factors", "scored_at",
        ]  # fmt: skip
        read_only_fields = fields


class StudentScoreRequestSerializer(serializers.Serializer):
    student = serializers.IntegerField(min_value=1)


class StudentScoreSerializer(serializers.Serializer):
    student = serializers.IntegerField()
    term = serializers.IntegerField()
    model_version = serializers.CharField()
    probability = serializers.FloatField()
    band = serializers.ChoiceField(choices=RiskScore.Band.choices)
    factors = RiskFactorSerializer(many=True)


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id", "name", "status", "status_reason", "artifact_sha256", "feature_names", "feature_schema_version",
            "training_data_sha256", "training_terms", "holdout_term", "threshold", "metrics", "trained_at",
            "activated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ScoringRunSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.name", read_only=True)

    class Meta:
        model = ScoringRun
        fields = [
            "id", "term", "model_version", "trigger", "status", "as_of", "started_at", "finished_at",
            "students_scored", "timings", "error",
        ]  # fmt: skip
        read_only_fields = fields


class ScoringRunCreateSerializer(serializers.Serializer):
    term = serializers.IntegerField(min_value=1, required=False, help_text="Default: the current term.")
