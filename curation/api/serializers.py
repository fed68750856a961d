"""Request and response shapes of the curation API. Rules live in services; these only describe fields."""

from rest_framework import serializers

from ..models import DatasetVersion, Example, ImportJob, Membership, Project, QualityScan, ReviewStatus


class ProjectSerializer(serializers.ModelSerializer):
    labels = serializers.ListField(child=serializers.CharField(max_length=100, allow_blank=True), required=False)
    output_format = serializers.JSONField(
        required=False,
        help_text='{"kind": "none"}, {"kind": "regex", "pattern": "..."} or {"kind": "json_schema", "schema": {...}}',
    )
    role = serializers.SerializerMethodField(help_text="Your role in this project: lead or expert.")

    class Meta:
        model = Project
        fields = [
            "name",
            "slug",
            "task_description",
            "system_prompt",
            "labels",
            "output_format",
            "tokenizer",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["role", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"validators": []}}

    def get_role(self, project: Project) -> str | None:
        return getattr(project, "user_role", None)


class ProjectUpdateSerializer(ProjectSerializer):
    class Meta(ProjectSerializer.Meta):
        read_only_fields = ["slug", "role", "created_at", "updated_at"]


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]
        read_only_fields = ["created_at"]


class ExampleSerializer(serializers.ModelSerializer):
    messages = serializers.JSONField(help_text='[{"role": "system"|"user"|"assistant", "content": "..."}]')
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    metadata = serializers.JSONField(required=False)

    class Meta:
        model = Example
        fields = [
            "id",
            "messages",
            "label",
            "tags",
            "metadata",
            "source",
            "status",
            "version",
            "content_hash",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ExampleUpdateSerializer(serializers.Serializer):
    """A change to an example; `version` must be the version the client read (a stale one gets 409)."""

    version = serializers.IntegerField(min_value=1)
    messages = serializers.JSONField(required=False)
    label = serializers.CharField(required=False, allow_blank=True, max_length=100)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    metadata = serializers.JSONField(required=False)
    status = serializers.ChoiceField(choices=ReviewStatus.choices, required=False)
    comment = serializers.CharField(required=False, allow_blank=True)


class ExampleConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = ExampleSerializer()


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based line of the JSONL body (position in a JSON array).")
    code = serializers.CharField()
    message = serializers.CharField()


class ImportJobSerializer(serializers.ModelSerializer):
    created = serializers.IntegerField(source="created_count")
    duplicates = serializers.IntegerField(source="duplicate_count")
    rejected = serializers.IntegerField(source="rejected_count")
    errors = ImportErrorSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "format",
            "mode",
            "source",
            "created_by",
            "created_at",
            "finished_at",
            "total_lines",
            "created",
            "duplicates",
            "rejected",
            "errors",
            "errors_truncated",
        ]
        read_only_fields = fields


class QualityScanSerializer(serializers.ModelSerializer):
    class Meta:
        model = QualityScan
        fields = [
            "id",
            "status",
            "threshold",
            "examples",
            "clusters",
            "clustered_examples",
            "stats",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "number",
            "created_by",
            "created_at",
            "seed",
            "train_share",
            "val_share",
            "test_share",
            "max_per_label",
            "counts",
            "content_hash",
        ]
        read_only_fields = fields


class DatasetVersionCreateSerializer(serializers.Serializer):
    train = serializers.FloatField(default=0.8, min_value=0, max_value=1)
    val = serializers.FloatField(default=0.1, min_value=0, max_value=1)
    test = serializers.FloatField(default=0.1, min_value=0, max_value=1)
    seed = serializers.IntegerField(default=0, min_value=-(2**31), max_value=2**31 - 1)
    max_per_label = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Balance: at most this many approved examples per label.",
    )


class ReadinessCheckSerializer(serializers.Serializer):
    id = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()
    threshold = serializers.CharField()


class ReadinessSerializer(serializers.Serializer):
    ready = serializers.BooleanField()
    checks = ReadinessCheckSerializer(many=True)
    advice = serializers.ListField(child=serializers.CharField())
    thresholds = serializers.DictField()


class DuplicateResolveSerializer(serializers.Serializer):
    keep = serializers.IntegerField(help_text="The example to keep; the cluster's other members are rejected.")
