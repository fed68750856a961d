"""Projects, their members, examples, revisions and imports."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import LeasedJob


class Project(models.Model):
    """A fine-tuning task: its data, the label set, and the format its answers must follow."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    task_description = models.TextField(blank=True)
    system_prompt = models.TextField(blank=True)
    labels = models.JSONField(default=list, blank=True, help_text="The label set, e.g. P1..P4; may be empty.")
    output_format = models.JSONField(
        default=dict, blank=True, help_text='{"kind": "none"|"regex"|"json_schema", ...}; checks assistant answers.'
    )
    max_seq_length = models.PositiveIntegerField(
        default=2048, help_text="Tokens the base model takes; longer examples are flagged."
    )
    tokenizer = models.CharField(
        max_length=300,
        blank=True,
        help_text="A Hugging Face id or local folder whose tokenizer counts tokens in the quality scan (blank: an "
        "estimate of UTF-8 bytes / 4). Set from the base model of the project's first finished training run.",
    )
    baseline_score = models.FloatField(
        null=True,
        blank=True,
        help_text="The best base-model score on the primary metrics (its weakest one) in the latest evaluation; "
        "at 90% the readiness advice says fine-tuning is probably not worth it.",
    )
    reviews_required = models.PositiveSmallIntegerField(
        default=1, help_text="Independent reviews each example needs; with 2 or more, agreement is measured."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(reviews_required__gte=1, reviews_required__lte=5), name="project_reviews_required_range"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one project: leads manage it, experts review its examples."""

    class Role(models.TextChoices):
        LEAD = "lead", "Project lead"
        EXPERT = "expert", "Domain expert"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EXPERT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
            models.CheckConstraint(condition=Q(role__in=["lead", "expert"]), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    NEEDS_CHANGES = "needs_changes", "Needs changes"


class Example(models.Model):
    """One chat-format training example; `version` increases with every saved change (optimistic concurrency)."""

    # No single-column indexes on the foreign keys: the composite indexes below lead with project, and every index
    # costs each imported row.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="examples", db_index=False)
    messages = models.JSONField()
    label = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=200, blank=True, default="")
    content_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    version = models.PositiveIntegerField(default=1)
    # The review queue: who holds the example now, until when; how many reviews it has; whether they disagree.
    # The lock columns are deliberately not indexed, so that taking and releasing a lock is a HOT update.
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    locked_until = models.DateTimeField(null=True, blank=True)
    # Which claim holds the lock: each page that claims the example gets a new token and sends it back with its
    # release, so a late release from a page the expert left (a reload) cannot undo the claim of the page after it.
    lock_token = models.CharField(max_length=32, blank=True, default="", db_default="")
    review_count = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Sent back to review (e.g. after an evaluation found the fine-tune failing on it): a new round of reviews,
    # the earlier rounds' reviews kept.
    review_round = models.PositiveSmallIntegerField(default=0, db_default=0)
    disputed = models.BooleanField(default=False, db_default=False)
    # Data quality, filled in by the quality scan after imports and kept current by edits: the near-duplicate
    # cluster (the smallest id of its members) and whether the last assistant answer fits the output format.
    cluster_id = models.BigIntegerField(null=True, blank=True)
    format_ok = models.BooleanField(null=True, blank=True)
    # Provenance only: no index and no database-level constraint, which would cost every imported row a check.
    import_job = models.ForeignKey(
        "ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=models.functions.Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=models.functions.Now())

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="example_unique_content_per_project"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected", "needs_changes"]),
                name="example_status_valid",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="example_version_positive"),
        ]
        indexes = [
            # The queue, the list and the stats filter by project and status or label and walk by id.
            models.Index(fields=["project", "status", "id"], name="example_project_status"),
            models.Index(fields=["project", "label", "id"], name="example_project_label"),
            models.Index(
                fields=["project", "cluster_id"], condition=Q(cluster_id__isnull=False), name="example_clustered"
            ),
            # What changed since a dataset version was frozen (readiness: all_reviewed).
            models.Index(fields=["project", "updated_at"], name="example_project_updated"),
        ]

    def __str__(self) -> str:
        return f"Example #{self.pk}"


class Review(models.Model):
    """One expert's decision on one example. An example may need several independent reviews."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approve"
        REJECTED = "rejected", "Reject"
        NEEDS_CHANGES = "needs_changes", "Needs changes"

    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    label = models.CharField(max_length=100, blank=True, default="")
    comment = models.TextField(blank=True)
    example_version = models.PositiveIntegerField(help_text="The version of the example the decision was made on.")
    round = models.PositiveSmallIntegerField(default=0, db_default=0, help_text="The example's review round.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["example_id", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["example", "reviewer", "round"], name="review_one_per_reviewer_round"),
            models.CheckConstraint(
                condition=Q(decision__in=["approved", "rejected", "needs_changes"]), name="review_decision_valid"
            ),
        ]
        indexes = [models.Index(fields=["reviewer", "updated_at"], name="review_reviewer_time")]

    def __str__(self) -> str:
        return f"{self.reviewer} on #{self.example_id}: {self.decision}"


class Draft(models.Model):
    """An edit in progress, kept on the server as the expert types, so that a closed tab loses nothing."""

    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    base_version = models.PositiveIntegerField()
    messages = models.JSONField()
    label = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["example", "user"], name="draft_one_per_user")]

    def __str__(self) -> str:
        return f"Draft of #{self.example_id} by {self.user}"


class Revision(models.Model):
    """A saved state of an example, with who made it and when. Nothing an expert writes is ever lost."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Imported"
        EDIT = "edit", "Edited"
        RESTORE = "restore", "Restored"
        REVIEW = "review", "Reviewed"
        ADJUDICATE = "adjudicate", "Adjudicated"

    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EDIT)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    messages = models.JSONField()
    label = models.CharField(max_length=100, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["example_id", "version"]
        constraints = [models.UniqueConstraint(fields=["example", "version"], name="revision_unique_version")]

    def __str__(self) -> str:
        return f"Example #{self.example_id} v{self.version}"


class ImportJob(LeasedJob):
    """One bulk import: who sent what, how it went, and the line-numbered error report.

    A body over FINELINE_IMPORT_SYNC_MAX_BYTES is spooled to a file and imported by a worker (queued, then running,
    held through a lease like the other jobs); a smaller one is imported within its request. `error` says why a
    queued import ended without its report (its worker crashed, was lost, or ran out of time)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # spooled, waiting for a worker
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"  # every line kept or a duplicate
        PARTIAL = "partial", "Partial"  # some lines rejected, the others kept (partial mode)
        FAILED = "failed", "Failed"  # nothing kept: an error in atomic mode, or every line rejected

    class Mode(models.TextChoices):
        ATOMIC = "atomic", "Atomic: any error writes nothing"
        PARTIAL = "partial", "Partial: valid lines are written"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    LEASE_SETTING = "FINELINE_IMPORT_LEASE_SECONDS"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=200, blank=True)
    format = models.CharField(max_length=30, default="auto")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.ATOMIC)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    total_lines = models.PositiveIntegerField(default=0, help_text="Lines read: so far while a worker imports.")
    size_bytes = models.PositiveBigIntegerField(default=0, help_text="The spooled body's size (queued imports).")
    read_bytes = models.PositiveBigIntegerField(default=0, help_text="How much of it the worker has read.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Starts by a worker (one more after a lost one).")
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    errors_truncated = models.BooleanField(default=False)
    mapping = models.JSONField(null=True, blank=True, help_text="The column mapping the rows were read through.")
    ignored_keys = models.JSONField(
        default=dict, blank=True, help_text="Keys the mapping does not name, with the number of rows that had each."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "partial", "failed"]),
                name="importjob_status_valid",
            ),
            models.CheckConstraint(condition=Q(mode__in=["atomic", "partial"]), name="importjob_mode_valid"),
        ]

    def __str__(self) -> str:
        return f"Import #{self.pk} into {self.project}"


class QualityScan(models.Model):
    """One pass over a project's examples: near-duplicate clusters and output-format conformance."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_scans")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    threshold = models.FloatField(help_text="Jaccard similarity from which two examples count as near duplicates.")
    examples = models.PositiveIntegerField(default=0)
    clusters = models.PositiveIntegerField(default=0)
    clustered_examples = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True, help_text="Token-length histograms per role, long examples.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="qualityscan_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"Quality scan #{self.pk} of {self.project}"


class DatasetVersion(models.Model):
    """A frozen, immutable train/validation/test split of a project's approved examples."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_versions")
    number = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    seed = models.IntegerField(default=0)
    train_share = models.FloatField()
    val_share = models.FloatField()
    test_share = models.FloatField()
    max_per_label = models.PositiveIntegerField(null=True, blank=True, help_text="Cap that balanced the labels.")
    counts = models.JSONField(default=dict, help_text="Examples per split, and per label within each split.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 over every (example, content hash, split).")

    class Meta:
        ordering = ["project", "-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="datasetversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.project} v{self.number}"


class DatasetVersionItem(models.Model):
    """One example as it was frozen into a version: its split, content hash and content."""

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VAL = "val", "Validation"
        TEST = "test", "Test"

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    example = models.ForeignKey(Example, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    split = models.CharField(max_length=5, choices=Split.choices)
    content_hash = models.CharField(max_length=64)
    messages = models.JSONField()
    label = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "example"], name="datasetversionitem_unique_example"),
            models.CheckConstraint(condition=Q(split__in=["train", "val", "test"]), name="datasetversionitem_split"),
        ]
        indexes = [models.Index(fields=["version", "split", "id"], name="dvitem_version_split")]

    def __str__(self) -> str:
        return f"{self.version} {self.split} #{self.example_id}"


class ExampleCounter(models.Model):
    """How many examples a project has per status, label, format result and edge-case tag.

    Maintained by database triggers on the examples table (curation/counters.py), so that the dashboard and the
    readiness verdict read a handful of rows instead of counting a million. Rows are spread over a few shards so that
    concurrent reviews do not queue on one hot row; read them with SUM.
    """

    class FormatState(models.IntegerChoices):
        UNCHECKED = 0, "Not checked"
        OK = 1, "Fits the format"
        BAD = 2, "Does not fit"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    shard = models.SmallIntegerField(default=0)
    status = models.CharField(max_length=20)
    label = models.CharField(max_length=100, blank=True)
    format_state = models.SmallIntegerField(choices=FormatState.choices)
    edge_case = models.BooleanField()
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "shard", "status", "label", "format_state", "edge_case"], name="examplecounter_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.status} {self.label}: {self.n}"
