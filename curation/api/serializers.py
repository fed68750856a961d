"""Request and response shapes of the curation API. Rules live in services; these only describe fields."""

from django.urls import reverse
from rest_framework import serializers

from core import server_paths

from ..models import DatasetVersion, Example, ImportJob, Membership, Project, QualityScan, ReviewStatus


class ProjectSerializer(serializers.ModelSerializer):
    labels = serializers.ListField(child=serializers.CharField(max_length=100, allow_blank=True), required=False)
    output_format = serializers.JSONField(
        required=False,
        help_text='{"kind": "none"}, {"kind": "regex", "pattern": "..."} or {"kind": "json_schema", "schema": {...}}. '
        "Patterns (the regex, a schema's pattern and patternProperties) use RE2 syntax: no backreferences or "
        "lookarounds. A schema's $refs must point inside it.",
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

    def to_representation(self, project: Project) -> dict:
        data = super().to_representation(project)
        data["tokenizer"] = server_paths.redact(data.get("tokenizer") or "")  # a tiny-local build's folder
        return data


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
    line = serializers.IntegerField(
        help_text="1-based line of the JSONL or CSV body (position in a JSON array, row of a Parquet file);"
        " 0 for the input as a whole."
    )
    code = serializers.CharField()
    message = serializers.CharField()


class ImportJobSerializer(serializers.ModelSerializer):
    created = serializers.IntegerField(source="created_count")
    duplicates = serializers.IntegerField(source="duplicate_count")
    rejected = serializers.IntegerField(source="rejected_count")
    errors = ImportErrorSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username", default=None)
    status = serializers.ChoiceField(
        choices=ImportJob.Status.choices,
        help_text="queued: a large body waiting for a worker; running: a worker imports it (see total_lines and"
        " read_bytes); succeeded: every line kept or a duplicate; partial: some lines rejected, the rest kept; failed:"
        " nothing kept (an error in atomic mode, every line rejected, no line at all, or `error`).",
    )
    url = serializers.SerializerMethodField(help_text="This import's detail, to poll while it is queued or running.")
    error = serializers.CharField(
        help_text="Why a queued import ended without its report: its worker crashed, was lost or ran out of time."
    )
    size_bytes = serializers.IntegerField(help_text="The body's size, for an import a worker runs (else 0).")
    read_bytes = serializers.IntegerField(help_text="How much of the body the worker has read so far.")
    mapping = serializers.JSONField(help_text="The column mapping the rows were read through, if any.")
    ignored_keys = serializers.DictField(
        child=serializers.IntegerField(), help_text="Keys the mapping does not name: how many rows had each."
    )

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "status",
            "format",
            "mode",
            "mapping",
            "source",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "size_bytes",
            "read_bytes",
            "total_lines",
            "created",
            "duplicates",
            "rejected",
            "errors",
            "errors_truncated",
            "ignored_keys",
            "error",
        ]
        read_only_fields = fields

    def get_url(self, job: ImportJob) -> str:
        return reverse("import-detail", kwargs={"slug": job.project.slug, "pk": job.pk})


class ImportPreviewRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    example = serializers.JSONField(allow_null=True, help_text="{messages, label, tags, metadata} as it would import.")
    error = ImportErrorSerializer(allow_null=True)


class ImportPreviewSerializer(serializers.Serializer):
    format = serializers.CharField(help_text="How the body was read: jsonl, json, csv or parquet.")
    keys = serializers.ListField(child=serializers.CharField(), help_text="The keys the first rows carry.")
    needs_mapping = serializers.BooleanField(help_text="The rows are in no shape the product reads without a mapping.")
    suggested_mapping = serializers.JSONField(allow_null=True)
    mapping = serializers.JSONField(allow_null=True, help_text="The mapping the rows below were read through.")
    ignored_keys = serializers.ListField(child=serializers.CharField())
    rows = ImportPreviewRowSerializer(many=True)


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


class VersionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()


class DiffSideSerializer(serializers.Serializer):
    item = serializers.IntegerField(help_text="The frozen item's id.")
    split = serializers.ChoiceField(choices=["train", "val", "test"])
    label = serializers.CharField(allow_blank=True)
    content_hash = serializers.CharField()


class DiffLineSerializer(serializers.Serializer):
    mark = serializers.ChoiceField(choices=["+", "-", " "], help_text="+ added, - removed, space unchanged.")
    text = serializers.CharField(allow_blank=True)


class DiffTurnSerializer(serializers.Serializer):
    role = serializers.CharField(allow_blank=True)
    lines = DiffLineSerializer(many=True)


class DiffEntrySerializer(serializers.Serializer):
    example = serializers.IntegerField(allow_null=True, help_text="Null when the example was deleted since.")
    matched_by = serializers.ChoiceField(
        choices=["example", "content_hash"],
        allow_null=True,
        help_text="How the two items were found to be one example (null for added and removed ones): the example's "
        "id, or, for an example deleted since, the content hash.",
    )
    before = DiffSideSerializer(allow_null=True, help_text="The item in `against`; null when added.")
    after = DiffSideSerializer(allow_null=True, help_text="The item in this version; null when removed.")
    excerpt = serializers.CharField(allow_blank=True, help_text="The first user turn, cut to 110 characters.")
    turns = DiffTurnSerializer(many=True, help_text="Edited items: each changed turn's line diff; [] otherwise.")


class DiffCountSerializer(serializers.Serializer):
    before = serializers.IntegerField()
    after = serializers.IntegerField()


class DiffLabelSerializer(DiffCountSerializer):
    label = serializers.CharField(allow_blank=True)
    change = serializers.IntegerField(help_text="after - before")


class DiffSplitSerializer(DiffCountSerializer):
    split = serializers.CharField()


class DiffTransitionSerializer(serializers.Serializer):
    before = serializers.CharField(allow_blank=True)
    after = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class DiffTotalsSerializer(serializers.Serializer):
    before = serializers.IntegerField(help_text="Items in `against`.")
    after = serializers.IntegerField(help_text="Items in this version.")
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    edited = serializers.IntegerField(help_text="The same example with other messages.")
    relabelled = serializers.IntegerField()
    moved = serializers.IntegerField(help_text="The same example in another split.")
    unchanged = serializers.IntegerField()
    matched_by_content_hash = serializers.IntegerField(
        help_text="Items of examples deleted since, matched across the versions by their content hash."
    )


class DiffListsSerializer(serializers.Serializer):
    added = DiffEntrySerializer(many=True, required=False)
    removed = DiffEntrySerializer(many=True, required=False)
    edited = DiffEntrySerializer(many=True, required=False)
    relabelled = DiffEntrySerializer(many=True, required=False)
    moved = DiffEntrySerializer(many=True, required=False)


class DatasetVersionDiffSerializer(serializers.Serializer):
    version = VersionRefSerializer(help_text="After: the version of the URL.")
    against = VersionRefSerializer(help_text="Before: the version `against` names.")
    totals = DiffTotalsSerializer()
    labels = DiffLabelSerializer(many=True, help_text="Items per label before and after.")
    splits = DiffSplitSerializer(many=True, help_text="Items per split before and after.")
    relabels = DiffTransitionSerializer(many=True, help_text="Relabelled items per (label before, label after).")
    moves = DiffTransitionSerializer(many=True, help_text="Moved items per (split before, split after).")
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    lists = DiffListsSerializer(
        help_text="A page of each kind (or of `kind` alone), by example id; the totals count them all."
    )


class ReadinessCheckSerializer(serializers.Serializer):
    id = serializers.CharField()
    passed = serializers.BooleanField()
    status = serializers.CharField(
        help_text="passed, failed or unmeasured: the data cannot tell yet (e.g. the label balance with nothing "
        "approved); an unmeasured check has not passed."
    )
    detail = serializers.CharField()
    threshold = serializers.CharField()


class ReadinessSerializer(serializers.Serializer):
    ready = serializers.BooleanField()
    checks = ReadinessCheckSerializer(many=True)
    advice = serializers.ListField(child=serializers.CharField())
    thresholds = serializers.DictField()


class DuplicateResolveSerializer(serializers.Serializer):
    keep = serializers.IntegerField(help_text="The example to keep; the cluster's other members are rejected.")


class BulkFilterSerializer(serializers.Serializer):
    """The example list's filters; an unknown key is an error (a typo must not widen a bulk action)."""

    status = serializers.ChoiceField(choices=ReviewStatus.choices, required=False, allow_blank=True)
    label = serializers.CharField(required=False, allow_blank=True, max_length=100)
    tag = serializers.CharField(required=False, allow_blank=True, max_length=100)
    q = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Words in any message.")
    reviewer = serializers.CharField(required=False, allow_blank=True, max_length=150, help_text="A username.")
    format = serializers.ChoiceField(choices=["ok", "bad", "unchecked"], required=False, allow_blank=True)
    cluster = serializers.IntegerField(required=False, min_value=1, help_text="A duplicate cluster id.")
    too_long = serializers.BooleanField(required=False, help_text="Over the project's max sequence length.")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    f"Unknown filter {', '.join(map(str, unknown))}; the filters are {', '.join(self.fields)}."
                )
        return super().to_internal_value(data)


class BulkActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["approve", "reject", "set_label", "add_tag", "send_to_review"])
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=50_000,
        help_text="The examples to act on; or `filter`.",
    )
    filter = BulkFilterSerializer(required=False, help_text="Act on every example matching these filters; or `ids`.")
    label = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="set_label: the label. approve: optional, set along with the approval.",
    )
    tag = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="add_tag: the tag. send_to_review: optional."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, data):
        if ("ids" in data) == ("filter" in data):
            raise serializers.ValidationError({"ids": ["Send `ids` or `filter`, not both and not neither."]})
        return data


class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    matched = serializers.IntegerField(help_text="Examples picked by the ids or the filter.")
    changed = serializers.IntegerField(help_text="Changed: a new version, a revision and (approve, reject) a review.")
    unchanged = serializers.IntegerField(help_text="Already as asked; nothing written.")
    skipped_locked = serializers.IntegerField(help_text="Left alone: an expert is reviewing them right now.")
    skipped_no_label = serializers.IntegerField(help_text="approve without `label`: examples that have no label.")


class DuplicateMemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReviewStatus.choices)
    label = serializers.CharField(allow_blank=True)
    messages = serializers.ListField(child=serializers.DictField())


class DuplicateClusterSerializer(serializers.Serializer):
    cluster_id = serializers.IntegerField()
    size = serializers.IntegerField(help_text="Members not rejected.")
    examples = DuplicateMemberSerializer(many=True)


class DuplicateClusterPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Clusters in all (two or more members not rejected).")
    examples = serializers.IntegerField(help_text="Examples in those clusters.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = DuplicateClusterSerializer(many=True)
