"""Evaluations: a training run's fine-tune against the baselines on its version's test split, and the verdict."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import LeasedJob

SYSTEMS = ["fine_tuned", "base_zero_shot", "base_best_prompt", "frontier", "embedding_classifier"]


class Evaluation(LeasedJob):
    """One comparison of systems on a frozen version's test split. The row is the job's source of truth."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    LEASE_SETTING = "FINELINE_EVALUATION_LEASE_SECONDS"

    project = models.ForeignKey("curation.Project", on_delete=models.CASCADE, related_name="evaluations")
    training_run = models.ForeignKey(
        "training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="evaluations"
    )
    dataset_version = models.ForeignKey("curation.DatasetVersion", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    systems = models.JSONField(default=list, help_text="The systems compared, in order.")
    primary_metrics = models.JSONField(default=list, help_text="The metrics the verdict is decided on.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Units of work done (answers, judgements).")
    total = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=200, blank=True, help_text="What the worker is doing now.")
    results = models.JSONField(default=list, blank=True, help_text="[{system, label, status, metrics, notes}]")
    verdict = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="evaluation_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Evaluation #{self.pk} of {self.project}"


class EvaluationAnswer(models.Model):
    """One system's answer to one test example, with its per-example scores."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey("curation.DatasetVersionItem", on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=30)
    answer = models.TextField()
    format_ok = models.BooleanField(null=True)
    label = models.CharField(max_length=100, blank=True)
    label_ok = models.BooleanField(null=True)
    relevance = models.FloatField(null=True)
    chrf = models.FloatField(null=True, help_text="chrF (0-100) of the answer against the reference answer.")
    hallucinated = models.BooleanField(null=True)
    unsupported = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "item", "system"], name="evaluationanswer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.system} on item {self.item_id}"


class AnswerRating(models.Model):
    """One expert's blind rating of one answer (the system's name never shown): how relevant it is, 1-5, and whether it
    states something the source does not support. What the judge's scores are checked against; one per rater per
    answer, changed in place when the rater rates it again."""

    answer = models.ForeignKey(EvaluationAnswer, on_delete=models.CASCADE, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    relevance = models.PositiveSmallIntegerField(help_text="1 (off the point) to 5 (fully answers it).")
    unsupported = models.BooleanField(help_text="The answer states something the source does not support.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["answer", "rater"], name="answerrating_one_per_rater"),
            models.CheckConstraint(condition=Q(relevance__gte=1, relevance__lte=5), name="answerrating_relevance_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} on answer {self.answer_id}"


class PromptVariant(models.Model):
    """A prompt for the base model (system prompt + few-shot examples from the training split) that a lead edits;
    the evaluation uses the variant that scores best on the validation split."""

    project = models.ForeignKey("curation.Project", on_delete=models.CASCADE, related_name="prompt_variants")
    name = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True)
    few_shot = models.JSONField(default=list, blank=True, help_text="Ids of training-split examples shown first.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_score = models.FloatField(null=True, blank=True, help_text="Its score on the validation split, last time.")

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="promptvariant_unique_name")]

    def __str__(self) -> str:
        return self.name


class GenerationJob(LeasedJob):
    """Candidates asked of a model for a label that lacks examples: it writes them from approved seed examples of
    that label; those that fit the format and duplicate nothing enter the queue pending, tagged `generated`. The row
    is the job's source of truth: progress while it runs, then the report."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        FRONTIER = "frontier", "Frontier model (the OpenAI-compatible endpoint)"
        FINE_TUNED = "fine_tuned", "A finished fine-tune"
        BASE_FEW_SHOT = "base_few_shot", "The base model with few-shot examples"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    LEASE_SETTING = "FINELINE_GENERATION_LEASE_SECONDS"

    project = models.ForeignKey("curation.Project", on_delete=models.CASCADE, related_name="generation_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    label = models.CharField(max_length=100)
    count = models.PositiveIntegerField(help_text="Candidates asked for.")
    source = models.CharField(max_length=20, choices=Source.choices)
    training_run = models.ForeignKey(
        "training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The run whose fine-tune (or base model) writes the candidates; none for the frontier model.",
    )  # fmt: skip
    model = models.CharField(max_length=300, blank=True, help_text="The model that wrote them, as named to people.")
    prompt = models.TextField(blank=True, help_text="The instruction each candidate was asked with (its seeds vary).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Candidates the model has written so far.")
    stage = models.CharField(max_length=200, blank=True)
    report = models.JSONField(
        default=dict,
        blank=True,
        help_text="{written, rejected_format, rejected_duplicate, errors, examples, rejections, seconds, per_second}",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="generationjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=["frontier", "fine_tuned", "base_few_shot"]), name="generationjob_source_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Generation #{self.pk} of {self.project}"
